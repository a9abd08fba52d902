// Quantization lands here.
