"""``rso bench``: builds a synthetic caseload through the real code paths and measures it.

Every figure is printed beside a raw baseline measured in the same run on the same machine
(plain ``executemany``, plain AES-GCM, a plain keyset SELECT, a bare WSGI app...), so the
ratio says what the application's own layers cost. Figures are medians over repeats; the
machine is small and noisy, so compare ratios rather than absolute numbers.
"""
