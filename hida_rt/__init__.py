"""hida_rt: an optimized inference runtime for HIDA, the ICCV 2023 facial-sketch GAN."""
__version__ = "0.1.0"
