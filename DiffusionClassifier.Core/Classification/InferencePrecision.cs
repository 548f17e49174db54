namespace DiffusionClassifier.Classification;

/// <summary>The floating-point type the network runs in during classification.</summary>
public enum InferencePrecision
{
    /// <summary>32-bit floats (the model's training precision).</summary>
    Float32,

    /// <summary>
    /// bfloat16 weights and activations (fast on CPUs with AVX-512 BF16 or AMX); noise, x_t and errors stay float32.
    /// </summary>
    BFloat16,

    /// <summary>
    /// Decided by measurement, once per process for each network: <see cref="BFloat16"/> when the network runs on a CPU
    /// with native bfloat16 instructions (x86-64 with AVX-512 BF16 or AMX-BF16, detected on Linux) and a probe there
    /// finds bfloat16 at least 1.3x as fast as float32 and its class scores within 10% of float32's spread;
    /// <see cref="Float32"/> everywhere else. <see cref="BayesClassifier.PrecisionReason"/> gives the choice, the
    /// reason and the measurements.
    /// </summary>
    Auto,
}
