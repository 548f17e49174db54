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
}
