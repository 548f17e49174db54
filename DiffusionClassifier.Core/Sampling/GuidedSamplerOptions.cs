using DiffusionClassifier.Devices;

namespace DiffusionClassifier.Sampling;

/// <summary>Settings of a <see cref="GuidedSampler"/>. Call <see cref="Validate"/> (the sampler does) before use.</summary>
/// <remarks>Thread safety: an immutable record, safe to share; derive variants with <c>with</c>.</remarks>
public sealed record GuidedSamplerOptions
{
    /// <summary>The default guidance weight: 2, the strongest of the reference's {0, 0.5, 2}; it gives the most
    /// typical, legible digits.</summary>
    public const double DefaultGuidanceWeight = 2.0;

    /// <summary>The default number of images per network call.</summary>
    public const int DefaultChunkSize = 64;

    /// <summary>
    /// Classifier-free guidance weight w &gt;= 0: <c>eps_hat = (1 + w) eps(x, c) - w eps(x, no label)</c>.
    /// 0 is plain conditional sampling (and skips the unconditional half); larger values give more typical, less
    /// diverse images. Default <see cref="DefaultGuidanceWeight"/> (2).
    /// </summary>
    public double GuidanceWeight { get; init; } = DefaultGuidanceWeight;

    /// <summary>Seed of the sampler's own random generator (x_T and every z). The same seed gives the same images.
    /// Default 0.</summary>
    public long Seed { get; init; }

    /// <summary>
    /// Images per network call, at least 1. With w &gt; 0 the label-dependent head sees twice as many rows
    /// (conditional and unconditional). The noise does not depend on it, so other chunk sizes give the same images up to
    /// float rounding (oneDNN picks batch-size-dependent kernels; about 1e-6); the same chunk size gives bit-identical
    /// images. Default <see cref="DefaultChunkSize"/> (64).
    /// </summary>
    public int ChunkSize { get; init; } = DefaultChunkSize;

    /// <summary>
    /// Keep the intermediate x_t every this many reverse steps (t = T - k, T - 2k, ...) plus the final x_0; 0 keeps
    /// none. Each capture keeps a copy of the batch (B x C x H x W floats). Default 0.
    /// </summary>
    public int CaptureEvery { get; init; }

    /// <summary>
    /// Where the sampling runs: auto, cpu, cuda or cuda:N (<see cref="DeviceSelection"/>); null (default) runs it where
    /// the model is. On another device than the model's, the sampler runs a private copy there and never moves the
    /// caller's model (the library's device rule, shared with
    /// <see cref="Classification.BayesClassifierOptions.Device"/>). The noise is drawn on the device it runs on.
    /// </summary>
    public string? Device { get; init; }

    /// <summary>Throws when a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The guidance weight is negative, NaN or infinite; the chunk
    /// size is below 1; or <see cref="CaptureEvery"/> is negative.</exception>
    /// <exception cref="ArgumentException"><see cref="Device"/> is not auto, cpu, cuda or cuda:N.</exception>
    public void Validate()
    {
        if (!(GuidanceWeight >= 0) || double.IsInfinity(GuidanceWeight))
            throw new ArgumentOutOfRangeException(nameof(GuidanceWeight), GuidanceWeight, "The guidance weight must be a finite number >= 0.");
        if (ChunkSize < 1)
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, "ChunkSize must be at least 1.");
        if (CaptureEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(CaptureEvery), CaptureEvery, "CaptureEvery must be 0 (no capture) or a positive step interval.");
        DeviceSelection.Validate(Device, nameof(Device));
    }
}
