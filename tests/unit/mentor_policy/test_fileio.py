"""Append-only files: a line torn by a crash is cut before the next append."""
from mentor_policy.fileio import truncate_torn_line


def test_truncate_torn_line_keeps_whole_lines_only(tmp_path):
    path = tmp_path / "episodes.csv"
    assert truncate_torn_line(path) == 0  # missing: nothing to do
    path.write_text("h\n1,2\n3,")
    assert truncate_torn_line(path) == 2 and path.read_text() == "h\n1,2\n"
    assert truncate_torn_line(path) == 0 and path.read_text() == "h\n1,2\n"
    path.write_text("torn")
    assert truncate_torn_line(path) == 4 and path.read_text() == ""
