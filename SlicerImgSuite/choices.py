"""Every user-facing enumeration, declared once.

argparse ``choices``, the Slicer modules' parameter ``Choice``s, the logic's checks and the docs read these
names (``Testing/test_choices.py`` holds them together). Plain tuples and no import, so the command line's
start-up can read them.

Examples
--------
>>> "slice-thickness" in RECON_FILTERS and FDK_FILTERS == ("none", "ramp")
True
"""

# segmentation: `imgsuite segment --preset`, the Segmentation module, segmentation/ct.py
CT_PRESETS = ("body", "lung", "bone")
# `imgsuite nuclei --method`, segmentation/nuclei.py
NUCLEI_MASK_METHODS = ("adaptive", "otsu", "threshold", "model")  # segmentation/nuclei.py: one image's mask
NUCLEI_METHODS = ("auto",) + NUCLEI_MASK_METHODS  # the job: auto = the shipped model on 2D, adaptive on z-stacks
PERINUCLEAR_MODES = ("ring", "grown")  # `imgsuite nuclei --perinuclear-mode`, segmentation/measure.py
# `imgsuite mabs --fusion`, segmentation/atlas.py
FUSION_METHODS = ("vote", "staple", "gaussian")
ATLAS_SELECTION_CRITERIA = ("nmi", "mse")  # mabs [ATLAS-SELECTION] atlas_selection_criteria
# tomo/recon.py:reconstruct; `imgsuite tomo --algorithm` takes the first three (fdk is `imgsuite fdk`)
RECON_ALGORITHMS = ("saa", "fbp", "sart", "fdk")
TOMO_ALGORITHMS = RECON_ALGORITHMS[:3]
# projection filters: `imgsuite tomo --filter` (FBP), `imgsuite fdk --filter`
RECON_FILTERS = ("none", "ramp", "hann", "slice-thickness")
FDK_FILTERS = RECON_FILTERS[:2]
# registration/nodes.py:PRESETS (the stages of each), the Registration module
REGISTRATION_PRESETS = ("rigid", "affine", "deformable")
# what the Registration module makes of the result: registration/nodes.py:register_nodes(transform_kind=...)
TRANSFORM_KINDS = ("auto", "linear", "bspline", "grid")
# plastimatch's --output-type pixel type names (io/images.py:OUTPUT_TYPES maps them to SimpleITK types)
PIXEL_TYPES = ("char", "double", "float", "int", "long", "short", "uchar", "uint", "ulong", "ushort")
# `imgsuite drr --sweep`, tomo/nodes.py:sweep_geometry, the Tomosynthesis module
SWEEP_KINDS = ("linear", "arc")
# the Image tools module's operations, in its chooser's order: imageops/nodes.py:OPERATIONS
IMAGE_TOOL_OPERATIONS = (
    "crop", "resample", "mask", "fill", "threshold", "add", "average", "adjust", "scale", "diff", "compare", "dice",
    "boundary", "dmap", "union", "stats", "probe", "filter", "synth",
)  # fmt: skip
# the RTStructures module: the units of a volume not loaded as a dose (rtstruct/dose.py:DOSE_UNITS, as shown)
PLAIN_VOLUME_DOSE_UNITS = ("not a dose unless loaded as one", "Gy", "cGy")
# `imgsuite stitch --mode/--method`, stitch/job.py, the Panoramic stitching module
STITCH_MODES = ("parallel", "angled")
STITCH_METHODS = ("geometry", "image", "ruler")
# DICOM PatientPosition: `imgsuite convert --patient-pos` (plastimatch's four first), io/dicom_write.py
PATIENT_POSITIONS = ("HFS", "HFP", "FFS", "FFP", "HFDR", "HFDL", "FFDR", "FFDL")
# the modalities a DICOM image series is written as: `imgsuite convert --modality`, io/dicom_write.py:SOP_CLASS
SERIES_MODALITIES = ("CT", "MR")
STITCH_BLENDS = ("linear", "multiband")  # `imgsuite stitch --blend`, stitch/blend.py:Canvas
