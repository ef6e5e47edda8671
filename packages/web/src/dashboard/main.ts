// The dashboard app: see README.md. (Being written.)
