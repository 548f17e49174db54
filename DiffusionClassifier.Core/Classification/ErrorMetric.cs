using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>The per-pixel loss between the true noise and the predicted noise, summed over the image.</summary>
public enum ErrorMetric
{
    /// <summary>Squared error (eps - eps_hat)^2: the ELBO term, so the probabilities are the model's posterior.</summary>
    L2,

    /// <summary>Absolute error |eps - eps_hat| (an option of Li et al. 2023); probabilities are then a heuristic.</summary>
    L1,

    /// <summary>Huber loss with delta 1 (PyTorch's default); probabilities are then a heuristic.</summary>
    Huber,
}

/// <summary>The metrics as functions.</summary>
internal static class ErrorMetrics
{
    private static readonly Scalar Half = 0.5.ToScalar();

    /// <summary>The per-pixel error of <paramref name="diff"/> = eps_hat - eps (same shape; the caller sums it).</summary>
    public static Tensor PerPixel(this ErrorMetric metric, Tensor diff) => metric switch
    {
        ErrorMetric.L2 => diff.pow(TorchScalars.Two), // square() is pow(2) with a temporary Scalar
        ErrorMetric.L1 => diff.abs(),
        ErrorMetric.Huber => Huber(diff),
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown error metric."),
    };

    // PyTorch's huber_loss with delta 1: 0.5 d^2 where |d| < 1, |d| - 0.5 elsewhere.
    private static Tensor Huber(Tensor diff)
    {
        var a = diff.abs();
        return where(a.lt(TorchScalars.One), a.pow(TorchScalars.Two).mul(Half), a.add(Half, TorchScalars.MinusOne));
    }
}
