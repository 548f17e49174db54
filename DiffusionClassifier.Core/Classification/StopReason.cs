namespace DiffusionClassifier.Classification;

/// <summary>Why <see cref="BayesClassifier"/> stopped spending samples on an image.</summary>
public enum StopReason
{
    /// <summary>The label's class received all n samples.</summary>
    AllSamples,

    /// <summary>Pruning left one class: no further samples could change the label.</summary>
    OneSurvivor,

    /// <summary>The <see cref="EarlyExit"/> test decided the label before n samples.</summary>
    Decided,
}
