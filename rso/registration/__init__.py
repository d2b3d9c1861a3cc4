"""Registration (issue 4): cases and their members, sealed personal data, duplicate detection,
search, registration documents.

``models`` (tables), ``schemas`` and ``validation`` (shapes and rules, reusable by the
manifest import), ``operations`` (what a user does; tests call these), ``documents`` (PDFs and
the public attestation check), ``views`` and ``api`` (thin), ``signals``, ``demo`` (the
``rso demo`` hook) and ``testing`` (helpers for tests).
"""
