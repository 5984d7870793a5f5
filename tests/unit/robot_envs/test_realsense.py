"""RealSense: the real pyrealsense2 with no device attached, and the frame-processing path."""
import numpy as np
import pytest

from robot_envs.camera import CameraError
from robot_envs.realsense import (
    RealSenseCamera,
    RealSenseCameraConfig,
    color_buffer_to_rgb,
    list_serials,
    process_color,
    select_serial,
)


def _connected_serials():
    try:
        return list_serials()
    except CameraError:
        return []


def test_missing_device_gives_clear_error():
    if _connected_serials():
        pytest.skip("a RealSense device is attached: the missing-device path cannot be exercised")
    with pytest.raises(CameraError, match="no RealSense device found|libusb"):
        RealSenseCamera(RealSenseCameraConfig()).open()
    with pytest.raises(CameraError, match="no RealSense device found.*wanted serial 123456|libusb"):
        RealSenseCamera(RealSenseCameraConfig(serial="123456")).open()


def test_reading_a_camera_that_is_not_open_fails_clearly():
    with pytest.raises(CameraError, match="not open"):
        RealSenseCamera(RealSenseCameraConfig(name="wrist")).read()


def test_serial_selection_lists_what_was_found():
    assert select_serial(None, ["111"]) == "111"
    assert select_serial("222", ["111", "222"]) == "222"
    with pytest.raises(CameraError, match=r"several RealSense devices found \['111', '222'\]"):
        select_serial(None, ["111", "222"])
    with pytest.raises(CameraError, match=r"serial 333 not found; connected devices: \['111', '222'\]"):
        select_serial("333", ["111", "222"])


def test_buffer_to_rgb_handles_formats_and_sizes():
    H, W = 4, 6
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    np.testing.assert_array_equal(color_buffer_to_rgb(rgb.tobytes(), W, H, "rgb8"), rgb)
    np.testing.assert_array_equal(color_buffer_to_rgb(rgb[:, :, ::-1].copy(), W, H, "bgr8"), rgb)
    with pytest.raises(ValueError, match="expected 4x6x3"):
        color_buffer_to_rgb(rgb.tobytes()[:-1], W, H, "rgb8")
    with pytest.raises(ValueError, match="uint8"):
        color_buffer_to_rgb(rgb.astype(np.float32), W, H, "rgb8")


def test_process_color_crops_then_resizes():
    cfg = RealSenseCameraConfig(width=64, height=48, crop=(16, 8, 32, 32), output_size=(16, 16), color_format="bgr8")
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[8:40, 16:48] = (0, 0, 255)  # red in BGR fills exactly the crop
    bgr[8:24, 16:32] = (255, 0, 0)  # blue top-left quarter of the crop
    out = process_color(bgr, cfg)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [0, 0, 255])  # blue in RGB
    np.testing.assert_array_equal(out[15, 15], [255, 0, 0])  # red in RGB


def test_config_validation():
    with pytest.raises(ValueError, match="does not fit"):
        RealSenseCameraConfig(width=64, height=48, crop=(40, 0, 32, 32))
    with pytest.raises(ValueError, match="color_format"):
        RealSenseCameraConfig(color_format="yuyv")
    with pytest.raises(ValueError, match="serial"):
        RealSenseCameraConfig(serial="  ")


def test_streams_from_an_attached_device():
    serials = _connected_serials()
    if not serials:
        pytest.skip("no RealSense device attached")
    with RealSenseCamera(RealSenseCameraConfig(serial=serials[0], warmup_frames=5)) as cam:
        a, b = cam.read(2.0), cam.read(2.0)
        assert a.image.shape == (84, 84, 3) and b.seq > a.seq and b.stamp >= a.stamp
