"""Data: clip sources (sample, folder, REDS, Vimeo-90K), MATLAB bicubic, training windows."""
