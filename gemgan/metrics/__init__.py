"""Sample-quality metrics: FID, KID, precision/recall, SWD.

`inception` is the FID network (pytorch-fid's weights, converted once by
`python -m gemgan.metrics.convert_inception`); `fid`, `kid`,
`precision_recall` and `swd` are pure functions over features or images;
`real_stats` caches the real images' features; `image_files` reads folders
and zips of images the way pytorch-fid does.
"""
