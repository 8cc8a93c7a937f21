"""Adapters between SlicerImgSuite's currency (``SimpleITK.Image``, LPS) and Slicer's MRML nodes (RAS).

Every function takes the scene (or a node) as an argument; nothing here holds global state.
Slicer/VTK are imported inside the submodules, which are imported only by callers that need MRML.
The LPS<->RAS conversion lives in :mod:`SlicerImgSuite.mrml.ras` and nowhere else.
"""
