"""Shared by the matcher tests: a textured photo, a known homography and how to score a fit."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from aeroloc.verify import project

# Photo → target, in pixel-corner coordinates: mild shear and perspective.
H_TRUE = np.array([[0.9, 0.1, 20.0], [-0.08, 0.95, 10.0], [2e-4, 1e-4, 1.0]])
_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def photo() -> np.ndarray:
    """``[256 x 256]`` uint8 textured image."""
    return np.ascontiguousarray(cv2.resize(data.camera(), (256, 256), interpolation=cv2.INTER_AREA))


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp with a pixel-corner matrix (OpenCV wants pixel-centre coordinates)."""
    centred = np.linalg.inv(_HALF) @ matrix @ _HALF
    return cv2.warpPerspective(image, centred, size)


def grid_rmse(matrix: np.ndarray, truth: np.ndarray, size: int = 256) -> float:
    """RMS distance between two transforms over a 9 x 9 grid covering the photo."""
    ticks = np.linspace(0, size, 9)
    pts = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((project(matrix, pts) - project(truth, pts)) ** 2, 1))))
