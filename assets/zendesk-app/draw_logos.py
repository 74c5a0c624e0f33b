"""Draws the Zendesk sidebar app's two logos, logo.png (320x320) and logo-small.png (128x128), which
`replaydesk zendesk app` puts in the package as assets/logo.png and assets/logo-small.png (the sizes
Zendesk asks for, PLATFORMS.md 1.2). They are drawn once and kept in the repository, so replaydesk
needs no image code; run this again only to change them: `python3 draw_logos.py` (needs Pillow).

The drawing: a white "play" triangle, from (0.38, 0.28) and (0.38, 0.72) to (0.74, 0.5) of the side,
on Garden blue (#1f73b7). The large logo is square (Zendesk rounds its corners itself); the small one
is a rounded square (corner radius 0.18 of the side) on a transparent background. Both are 8-bit RGBA,
drawn 8x larger and scaled down for smooth edges."""
from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (0x1F, 0x73, 0xB7, 255)
WHITE = (255, 255, 255, 255)
SCALE = 8


def logo(size, rounded):
    side = size * SCALE
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    box = (0, 0, side - 1, side - 1)
    if rounded:
        draw.rounded_rectangle(box, radius=round(0.18 * side), fill=BLUE)
    else:
        draw.rectangle(box, fill=BLUE)
    draw.polygon([(0.38 * side, 0.28 * side), (0.38 * side, 0.72 * side), (0.74 * side, 0.5 * side)], fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


here = Path(__file__).resolve().parent
logo(320, rounded=False).save(here / "logo.png", optimize=True)
logo(128, rounded=True).save(here / "logo-small.png", optimize=True)
