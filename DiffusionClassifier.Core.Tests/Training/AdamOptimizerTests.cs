using DiffusionClassifier.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Training;

/// <summary>
/// <see cref="AdamOptimizer"/> (which holds its Scalars) computes bit for bit what TorchSharp's Adam computes, and
/// both follow Adam's formula, checked in float64.
/// </summary>
public class AdamOptimizerTests
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;

    /// <summary>Five steps on the same parameters and gradients, learning rate changing per step.</summary>
    private static (float[] Ours, float[] TorchSharps, double[] Formula) Run()
    {
        var g = new Generator(8);
        using var start = randn(new long[] { 3, 7 }, generator: g);
        var gradients = Enumerable.Range(0, 5).Select(_ => randn(new long[] { 3, 7 }, generator: g) * 0.1).ToArray();
        double[] rates = [1e-3, 8e-4, 6e-4, 4e-4, 2e-4];

        using var ours = new Parameter(start.clone());
        using var theirs = new Parameter(start.clone());
        using var adam = new AdamOptimizer([ours], rates[0], Beta1, Beta2, Eps);
        using var reference = new Adam([theirs], rates[0], Beta1, Beta2, Eps);
        var p = start.to(ScalarType.Float64).data<double>().ToArray();
        var m = new double[p.Length];
        var v = new double[p.Length];
        for (int step = 0; step < rates.Length; step++)
        {
            foreach (var param in new[] { ours, theirs })
            {
                using (no_grad())
                    param.grad = gradients[step].clone();
            }
            adam.LearningRate = rates[step];
            reference.ParamGroups.Single().LearningRate = rates[step];
            adam.Step();
            reference.step();

            var grad = gradients[step].to(ScalarType.Float64).data<double>().ToArray();
            int n = step + 1;
            for (int i = 0; i < p.Length; i++)
            {
                m[i] = Beta1 * m[i] + (1 - Beta1) * grad[i];
                v[i] = Beta2 * v[i] + (1 - Beta2) * grad[i] * grad[i];
                // PyTorch's form: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
                double bc1 = 1 - Math.Pow(Beta1, n), bc2 = 1 - Math.Pow(Beta2, n);
                p[i] -= rates[step] / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + Eps);
            }
        }
        foreach (var t in gradients) t.Dispose();
        Assert.Equal(5, adam.States.Single().Step);
        return (ours.detach().data<float>().ToArray(), theirs.detach().data<float>().ToArray(), p);
    }

    [Fact]
    public void StepsAreBitForBitTorchSharpsAdam()
    {
        var (ours, theirs, _) = Run();
        Assert.Equal(theirs, ours);
    }

    [Fact]
    public void StepsFollowAdamsFormulaInFloat64()
    {
        var (ours, _, formula) = Run();
        for (int i = 0; i < ours.Length; i++)
            Assert.Equal(formula[i], ours[i], 1e-6);
    }

    [Fact]
    public void ZeroGradZeroesTheGradients()
    {
        using var p = new Parameter(ones(4));
        using (no_grad())
            p.grad = full(4, 3f);
        using var adam = new AdamOptimizer([p], 1e-3, Beta1, Beta2, Eps);
        adam.ZeroGrad();
        Assert.All(p.grad!.data<float>().ToArray(), x => Assert.Equal(0f, x));
    }
}
