#!/bin/sh
# Prints what the build produced.
cat /app/data/counts /app/data/upper.txt
