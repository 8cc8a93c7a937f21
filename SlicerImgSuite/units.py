"""Length units as files name them (OME, ImageJ, TIFF tags, ENVI headers): one table for every reader."""

from __future__ import annotations

# nanometres per unit (whole numbers where they can be: exact ratios), by the lower-case names writers use; "μm"
# with the Greek mu (U+03BC) stands in for "µm" (U+00B5) in some files, and "\u00b5m" spelt out in others
NM_PER_UNIT = {
    "m": 1e9, "cm": 1e7, "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6,
    "µm": 1e3, "μm": 1e3, "um": 1e3, "\\u00b5m": 1e3, "micron": 1e3, "micrometer": 1e3, "micrometre": 1e3,
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "pm": 1e-3, "å": 0.1, "angstrom": 0.1,
}  # fmt: skip


def length_in(unit: str | None, target: str) -> float | None:
    """How many ``target`` units one ``unit`` is (``None`` when ``unit`` is not a known length).

    Names are matched without case or surrounding spaces, and a plural "s" is dropped ("Micrometers").

    Examples
    --------
    >>> length_in("nm", "um"), length_in(" Micrometers ", "nm"), length_in("Wavenumber", "nm")
    (0.001, 1000.0, None)
    """
    name = str(unit or "").strip().lower()
    nm = NM_PER_UNIT.get(name)
    if nm is None and len(name) > 2:
        nm = NM_PER_UNIT.get(name.removesuffix("s"))
    return None if nm is None else nm / NM_PER_UNIT[target]
