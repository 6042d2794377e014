"""ONNX Runtime session options of gtvision's two CPU models (plate detector, recogniser).

* ``threads`` > 0 sets the intra-op pool (``GTV_THREADS``; ONNX Runtime ignores
  ``OMP_NUM_THREADS``), 0 keeps ONNX Runtime's default of one thread per core;
* the pool threads do not **spin** while they wait for work
  (``session.intra_op.allow_spinning = 0``). Spinning suits one big model that owns the
  machine; a flow runs two small models per frame between decoding and Python steps, and two
  spinning pools on the same cores took time from each other and from everything else. On the
  57 dev photos, 2 cores, default pools, interleaved runs: 84–109 ms wall / 166–214 ms CPU per
  photo spinning, 63–82 ms / 95–109 ms without (the readings are identical).
"""

from __future__ import annotations

from typing import Any

NO_SPIN = "session.intra_op.allow_spinning"


def session_options(threads: int = 0, base: Any = None) -> Any:
    """``onnxruntime.SessionOptions`` set as described above (new, or ``base`` when given).

    ``base`` is changed in place: pass a copy (``InferenceSession.get_session_options()``
    returns one).
    """
    import onnxruntime as ort

    if threads < 0:
        msg = f"threads must be >= 0 (0: one per core), got {threads}"
        raise ValueError(msg)
    options = base if base is not None else ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry(NO_SPIN, "0")
    return options
