"""A board's pages drawn server-side, as one SVG document or one PDF (a page per board page).

Teachers hand out the lesson's board afterwards (ENT, e-mail, print), so the export must look
like what the class saw: the geometry, backgrounds, stroke smoothing, arrowheads and text
placement follow the web client's `web_client/src/board/draw.js`. Everything here is pure:
the caller loads the images beforehand (`image_sources` says which) and passes their bytes.

Titles and texts come from users and the SVG is served from our own origin, so every string
is escaped and every colour and image type is checked before it reaches the document.
"""

from realtime.boards.export.layout import Images, image_sources
from realtime.boards.export.pdf import render_pdf
from realtime.boards.export.svg import render_svg

__all__ = ["Images", "image_sources", "render_pdf", "render_svg"]
