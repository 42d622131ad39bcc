"""The decision: which shortlisted artworks are answers, and how confident we are, in one framework-free package.

- :mod:`~services.decision.rule`: the parameters and :func:`~services.decision.rule.decide`, run live by the gateway.
- :mod:`~services.decision.duplicates`: an answer's near-duplicate reference (collection report) answered with it
  when the evidence cannot separate them.
- :mod:`~services.decision.evidence`: a candidate as the ``/identify`` answer's evidence row, and back.
- :mod:`~services.decision.stored`: the parameters a snapshot holds (``decision.json``).
- :mod:`~services.decision.logistic` and :mod:`~services.decision.fitting`: fitting the parameters on labelled
  photos, re-deciding offline with the same rule (``artwork-matcher calibrate``).
- :mod:`~services.decision.metrics` and :mod:`~services.decision.reliability`: recognition-quality metrics over
  labelled photos, and how far the confidences can be trusted (``artwork-matcher evaluate``).

It imports only the base dependencies (numpy, msgspec), the shared wire contracts and the snapshot's
``decision.json`` file (:mod:`services.collection.decision_file`): no web framework, no FAISS, OpenCV, torch or
scikit-learn, so the gateway's slim image carries it as it is.
"""
