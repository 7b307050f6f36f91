"""Video sketching: `hida-rt video` (or `python -m hida_rt.video`).

- `__main__`: the command line;
- `io`: decoding (PyAV files, webcams through OpenCV) and H.264 encoding;
- `pipeline`: decode -> front end -> backend -> paste -> encode, each stage in its own thread;
- `modes`: what a frame becomes (faces pasted back, or the whole frame); the service's live stream
  uses the same face mode.
"""
