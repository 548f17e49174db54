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
    /// <see cref="BFloat16"/> on a CPU with native bfloat16 arithmetic (x86-64 with AVX-512 BF16 or AMX-BF16, detected
    /// on Linux), <see cref="Float32"/> everywhere else (other CPUs, where bfloat16 is emulated and slower, and GPUs).
    /// <see cref="BayesClassifier.Precision"/> tells which one a classifier uses.
    /// </summary>
    Auto,
}
