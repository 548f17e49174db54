using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// Adam (Kingma and Ba 2015), computing exactly what TorchSharp's <c>optim.Adam</c> (and PyTorch's single-tensor Adam
/// without weight decay) computes, operation for operation, but holding every Scalar it passes to libtorch until the
/// call returns. TorchSharp's own Adam converts its coefficients to temporary Scalars that the garbage collector can
/// finalize while the native call still reads them, if another thread triggers a collection (see TorchScalars).
/// </summary>
internal sealed class AdamOptimizer : IDisposable
{
    private readonly IReadOnlyList<Parameter> parameters;
    private readonly double beta1, beta2;
    private readonly Scalar beta1Scalar, oneMinusBeta1, beta2Scalar, oneMinusBeta2, eps;
    private bool disposed;

    /// <summary>Creates the optimizer with zero moments for every parameter.</summary>
    public AdamOptimizer(IReadOnlyList<Parameter> parameters, double learningRate, double beta1, double beta2, double eps)
    {
        this.parameters = parameters;
        LearningRate = learningRate;
        this.beta1 = beta1;
        this.beta2 = beta2;
        beta1Scalar = beta1.ToScalar();
        oneMinusBeta1 = (1 - beta1).ToScalar();
        beta2Scalar = beta2.ToScalar();
        oneMinusBeta2 = (1 - beta2).ToScalar();
        this.eps = eps.ToScalar();
        States = parameters.Select(p => new AdamState(zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope())).ToArray();
    }

    /// <summary>The learning rate of the next step.</summary>
    public double LearningRate { get; set; }

    /// <summary>Moments and step count per parameter, in the order of the parameters.</summary>
    public IReadOnlyList<AdamState> States { get; }

    /// <summary>Sets every gradient to zero (as TorchSharp's <c>zero_grad</c>).</summary>
    public void ZeroGrad()
    {
        foreach (var p in parameters)
        {
            using var grad = p.grad;
            if (grad is null) continue;
            grad.requires_grad_(false);
            grad.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        using var mode = no_grad();
        for (int i = 0; i < parameters.Count; i++)
        {
            var param = parameters[i];
            using var grad = param.grad;
            if (grad is null) continue;
            var state = States[i];
            state.Step += 1;
            double biasCorrection1 = 1 - Math.Pow(beta1, state.Step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.Step);
            using var scope = NewDisposeScope();
            using var sqrtCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
            using var minusStepSize = (-(LearningRate / biasCorrection1)).ToScalar();
            state.ExpAvg.mul_(beta1Scalar).add_(grad, oneMinusBeta1);
            state.ExpAvgSq.mul_(beta2Scalar).addcmul_(grad, grad, oneMinusBeta2);
            var denom = state.ExpAvgSq.sqrt().div_(sqrtCorrection2).add_(eps, TorchScalars.One);
            param.addcdiv_(state.ExpAvg, denom, minusStepSize);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var s in States)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
        }
        foreach (var s in new[] { beta1Scalar, oneMinusBeta1, beta2Scalar, oneMinusBeta2, eps })
            s.Dispose();
    }
}

/// <summary>Adam's state for one parameter.</summary>
/// <param name="ExpAvg">First moment estimate.</param>
/// <param name="ExpAvgSq">Second moment estimate.</param>
internal sealed record AdamState(Tensor ExpAvg, Tensor ExpAvgSq)
{
    /// <summary>Updates applied so far.</summary>
    public long Step { get; set; }
}
