"""Tomosynthesis ("volume DR"), DRRs and cone-beam FDK.

Modules: ``geometry`` (views, plastimatch projection matrices), ``projset`` (projection files),
``project`` (forward/back projectors), ``drr``, ``recon`` (SAA, FBP, SART, FDK), ``phantom`` (analytic
test objects), ``nodes`` (MRML glue for the Tomosynthesis module), ``commands`` (imgsuite drr/tomo/fdk).
Nothing is imported here, so ``imgsuite`` starts without scipy.
"""
