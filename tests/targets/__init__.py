"""Tests of the targets a drill runs against and their fault drivers."""
