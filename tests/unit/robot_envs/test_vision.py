"""BallDetector on synthetic images with a known answer; image -> table-plane homography."""
import cv2
import numpy as np
import pytest

from robot_envs.vision import BallDetector, BallDetectorConfig, image_to_plane


def scene(balls=(), size=(96, 128), bg=(40, 90, 40)):
    img = np.full(size + (3,), bg, np.uint8)
    for (u, v, r, rgb) in balls:
        cv2.circle(img, (u, v), r, rgb, -1)
    return img


ORANGE, RED, BLUE = (255, 140, 0), (220, 20, 20), (20, 40, 230)


def test_detects_orange_ball_centre_and_radius():
    det = BallDetector().detect(scene([(70, 40, 8, ORANGE)]))
    assert det is not None
    assert det.u == pytest.approx(70, abs=0.5) and det.v == pytest.approx(40, abs=0.5)
    assert det.radius == pytest.approx(8, abs=1.0)


def test_ignores_other_colours_and_picks_largest_blob():
    det = BallDetector().detect(scene([(20, 20, 10, BLUE), (100, 70, 4, ORANGE), (50, 50, 7, ORANGE)]))
    assert (round(det.u), round(det.v)) == (50, 50)
    assert BallDetector().detect(scene([(20, 20, 10, BLUE)])) is None


def test_speckle_below_min_area_is_ignored():
    img = scene()
    img[10, 10] = ORANGE
    img[50, 60:62] = ORANGE
    assert BallDetector(BallDetectorConfig(min_area_px=6)).detect(img) is None


def test_red_ball_with_wraparound_hue_ranges():
    cfg = BallDetectorConfig(hsv_low=(0, 120, 80), hsv_high=(8, 255, 255),
                             hsv_low2=(170, 120, 80), hsv_high2=(179, 255, 255))
    det = BallDetector(cfg).detect(scene([(30, 60, 6, RED)]))
    assert det is not None and abs(det.u - 30) < 1 and abs(det.v - 60) < 1


def test_bad_inputs_and_configs():
    with pytest.raises(ValueError, match="uint8"):
        BallDetector().detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        BallDetector().detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="hsv range"):
        BallDetectorConfig(hsv_low=(30, 0, 0), hsv_high=(20, 255, 255))
    with pytest.raises(ValueError, match="both be set"):
        BallDetectorConfig(hsv_low2=(0, 0, 0))


def test_image_to_plane_homography():
    # table point = pixel scaled by 2 mm and shifted; a perspective row tests the division
    H = np.array([[0.002, 0, 0.1], [0, 0.002, -0.2], [0, 0, 1.0]])
    np.testing.assert_allclose(image_to_plane(H, (50, 100)), [0.2, 0.0])
    Hp = H.copy()
    Hp[2] = [0, 0.001, 1.0]
    np.testing.assert_allclose(image_to_plane(Hp, (50, 100)), np.array([0.2, 0.0]) / 1.1)
    with pytest.raises(ValueError, match="infinity"):
        image_to_plane(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0.0]]), (1, 1))
    with pytest.raises(ValueError, match="3, 3"):
        image_to_plane(np.eye(2), (1, 1))
