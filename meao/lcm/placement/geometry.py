"""Whether a point lies in a polygon: the ``locationConstraints.area`` test of placement."""

from __future__ import annotations

from collections.abc import Sequence

# Tolerance, in degrees, for a point to count as lying on a polygon edge (about 0.1 mm at the equator).
EDGE_EPSILON = 1e-9

# An edge of a ring with its bounding box widened by EDGE_EPSILON: x0, y0, x1, y1, min x, max x, min y, max y.
Edge = tuple[float, float, float, float, float, float, float, float]


def ring_edges(ring: Sequence[tuple[float, float]]) -> tuple[Edge, ...]:
    """The edges of a ring, prepared once so testing many points against it is cheap."""
    n = len(ring)
    if n and ring[0] == ring[-1]:
        n -= 1
    if n < 3:
        return ()
    eps = EDGE_EPSILON
    edges = []
    for i in range(n):
        (x0, y0), (x1, y1) = ring[i - 1], ring[i]
        edges.append((x0, y0, x1, y1, min(x0, x1) - eps, max(x0, x1) + eps, min(y0, y1) - eps, max(y0, y1) + eps))
    return tuple(edges)


def inside(lon: float, lat: float, edges: tuple[Edge, ...]) -> bool:
    inside = False
    for x0, y0, x1, y1, lox, hix, loy, hiy in edges:
        # On the edge counts as inside: a host exactly on the boundary is within the area.
        if (lox <= lon <= hix and loy <= lat <= hiy
                and abs((x1 - x0) * (lat - y0) - (y1 - y0) * (lon - x0)) <= EDGE_EPSILON):
            return True
        if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def point_in_polygon(lon: float, lat: float, ring: Sequence[tuple[float, float]]) -> bool:
    """Whether (lon, lat) lies inside or on the edge of a polygon ring of (lon, lat) vertices.

    Even-odd ray casting on planar lon/lat, enough for the city- or region-sized areas of
    ``locationConstraints`` (rings crossing the antimeridian are not supported). The ring may be closed
    (GeoJSON, last vertex equal to the first) or open; fewer than three vertices enclose nothing.
    """
    return inside(lon, lat, ring_edges(ring))
