using TorchSharp;
using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Training;

/// <summary>
/// An exponential moving average of a network's state_dict (parameters and floating buffers; integer buffers are
/// copied). Owns its shadow tensors; dispose it. Not thread-safe.
/// </summary>
internal sealed class ExponentialMovingAverage : IDisposable
{
    private readonly Dictionary<string, Tensor> shadow = new(StringComparer.Ordinal);

    /// <summary>Starts the average at the model's current state.</summary>
    public ExponentialMovingAverage(ConditionalUNet model, double decay)
    {
        Decay = decay;
        using var noGrad = no_grad();
        foreach (var (key, value) in model.state_dict())
            shadow[key] = value.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>The configured decay.</summary>
    public double Decay { get; }

    /// <summary>Number of updates so far.</summary>
    public long Updates { get; private set; }

    /// <summary>The averaged tensors by state_dict key (owned by this object).</summary>
    public IReadOnlyDictionary<string, Tensor> Shadow => shadow;

    /// <summary>The decay the next update uses: <c>min(Decay, (1 + n) / (10 + n))</c>.</summary>
    public double NextDecay => Math.Min(Decay, (1.0 + Updates) / (10.0 + Updates));

    /// <summary>Moves the average towards the model's current state.</summary>
    public void Update(ConditionalUNet model)
    {
        double d = NextDecay;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Held for the whole loop: see TorchScalars.
        using var decay = d.ToScalar();
        using var rest = (1 - d).ToScalar();
        foreach (var (key, value) in model.state_dict())
        {
            var s = shadow[key];
            if (s.is_floating_point())
                s.mul_(decay).add_(value, rest);
            else
                s.copy_(value);
        }
        Updates++;
    }

    /// <summary>Replaces the average (after the caller checked keys, shapes and dtypes).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> values, long updates)
    {
        using var noGrad = no_grad();
        foreach (var (key, s) in shadow)
            s.copy_(values[key]);
        Updates = updates;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in shadow.Values) t.Dispose();
        shadow.Clear();
    }
}
