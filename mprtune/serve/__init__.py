"""`mprtune serve`: LLaMA-Factory's OpenAI-compatible server for a trained variant, checked against `compare`.

target.py picks what to serve and renders its config from the settings `compare` used; server.py runs
the server as a child process group; app.py is that child; check.py replays held-out prompts over
HTTP (parity + latency); card.py writes the model card.
"""
