"""A terminal view's changed rows written to the terminal at once, not on Textual's schedule.

A `refresh()` marks the widget dirty; the screen waits for its message queue to go idle,
resumes its update timer, and on that timer's message the compositor renders the dirty
region and hands it to the driver. With 8 sessions streaming that way cost a keystroke's
echo 3.6 ms at the median and 19-30 ms at p99 between the frame's arrival and the
terminal (docs/performance.md, "where a keystroke's time goes"). Here the rows are
rendered through the widget's own styles (the strips the compositor would produce) and
written to the driver in the same call; the widget's line cache is marked dirty first, so
any later compositor pass renders the same rows.

Only when nothing else could be involved: the widget's screen is the one shown, its
layout is settled, no widget above it covers the rows, and the rows span its whole width.
Otherwise the caller refreshes as usual.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.widget import Widget


def _move_to(x: int, y: int) -> str:
    return f"\x1b[{y + 1};{x + 1}H"


def paint_now(widget: Widget, lines: list[int]) -> bool:
    """Write content lines `lines` of `widget` to the terminal now; False: refresh instead."""
    app = widget.app
    driver = app._driver
    if driver is None or app.is_headless or app.is_inline or app._batch_count or not lines:
        return False
    screen = widget.screen
    if screen is not app.screen or screen._layout_required or screen._scroll_required:
        return False
    if widget._layout_required or not widget.display:
        return False
    placed = screen._compositor.visible_widgets
    if widget not in placed:
        return False
    region, clip = placed[widget]
    shown = region.intersection(clip)
    if shown.x != region.x or shown.width != region.width:
        return False
    offset = widget.content_offset
    targets: list[tuple[int, Region]] = []  # (screen row, the line in widget coordinates)
    for line in lines:
        y = region.y + offset.y + line
        if shown.y <= y < shown.bottom:
            targets.append((y, Region(0, offset.y + line, region.width, 1)))
    if not targets:
        return True
    top, bottom = min(y for y, _ in targets), max(y for y, _ in targets) + 1
    band = Region(region.x, top, region.width, bottom - top)
    for other, (o_region, o_clip) in placed.items():  # topmost first
        if other is widget:
            break
        if o_region.intersection(o_clip).overlaps(band):
            return False
    styles_cache = widget._styles_cache
    for _, crop in targets:
        styles_cache.set_dirty(crop)
    console = app.console
    parts: list[str] = []
    for y, crop in targets:
        parts.append(_move_to(region.x, y))
        for strip in widget.render_lines(crop):
            parts.append(strip.render(console))
    cursor = screen.outer_size.clamp_offset(app.cursor_position)
    parts.append(_move_to(cursor.x, cursor.y))
    app._begin_update()
    try:
        driver.write("".join(parts))
    finally:
        app._end_update()
    driver.flush()
    return True
