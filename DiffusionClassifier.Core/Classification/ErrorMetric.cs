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
