"""Netflix has no public API, so there is no OAuth connector for it.

Participants download their viewing activity from Netflix's account page
(Account > Security & privacy > Download your personal information, or the
viewing activity CSV) and the researcher imports the file with the export
importer: ``twinme-lab import netflix FILE --participant ID``.
"""

from __future__ import annotations

from . import NO_API_MESSAGES

NO_API_MESSAGE = NO_API_MESSAGES["netflix"]
