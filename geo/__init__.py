"""Municipal boundaries for the map: schematic demo shapes, import of real files,
topology-preserving simplification and the region GeoJSON.

Never imports Dash; ``pages/`` reads the map through :func:`geo.store.load_region_geojson`.
Submodules are imported on demand so that reading the GeoJSON does not load GDAL.
"""
