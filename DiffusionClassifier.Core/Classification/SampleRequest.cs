namespace DiffusionClassifier.Classification;

/// <summary>One (t, eps) sample of one image, to be scored for each of <paramref name="Classes"/>.</summary>
/// <param name="Image">Index of the image within the current group.</param>
/// <param name="Sample">Index j of the sample in the image's draw order.</param>
/// <param name="Classes">The classes to score, ascending (shared between requests; do not modify).</param>
internal readonly record struct SampleRequest(int Image, int Sample, int[] Classes);

/// <summary>Scores sample requests: the network in <see cref="BayesClassifier"/>, a synthetic matrix in tests.</summary>
internal interface ISampleErrorEvaluator
{
    /// <summary>Fills <c>errors[r][k]</c> with the per-image loss (summed over pixels) of request r for class
    /// <c>requests[r].Classes[k]</c>, at the latest when <see cref="Flush"/> returns.</summary>
    /// <param name="requests">One chunk of requests.</param>
    /// <param name="errors">One array per request, as long as its class list.</param>
    void Evaluate(IReadOnlyList<SampleRequest> requests, double[][] errors);

    /// <summary>Completes every <see cref="Evaluate"/> call made so far (the network's: one device-to-host copy for
    /// all of them).</summary>
    void Flush()
    {
    }
}
