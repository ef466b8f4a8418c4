"""Deterministic demo data: a small builder (builder.py) fed by the YAML files in data/.

A company may replace the demo data by copying data/ to another folder, editing it and passing that
folder as `build_demo_rows(..., data_dir=...)`; reference.py says what each file must hold.
"""
from app.demo.builder import DEMO_END, DEMO_START, build_demo_rows
from app.demo.reference import DEFAULT_DATA_DIR, Chemical, DemoData, Province, load_reference_data

__all__ = ["build_demo_rows", "load_reference_data", "DemoData", "Chemical", "Province", "DEFAULT_DATA_DIR",
           "DEMO_START", "DEMO_END"]
