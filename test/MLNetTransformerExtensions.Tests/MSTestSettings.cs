// libtorch uses every core: tests that run torch in parallel thrash, so the suite runs serially.
[assembly: DoNotParallelize]
