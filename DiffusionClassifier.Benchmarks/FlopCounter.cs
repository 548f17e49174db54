using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>
/// Floating-point operation counts shared by all benchmarks (a multiply-add counts as 2 FLOPs). Only
/// convolutions, transposed convolutions and linear layers are counted; normalisations, activations, pooling and
/// element-wise work are left out (a few percent), so the achieved GFLOP/s is slightly conservative.
/// </summary>
public static class FlopCounter
{
    /// <summary>FLOPs of one network evaluation (trunk plus head) for one image.</summary>
    /// <param name="config">The architecture.</param>
    public static double Forward(ConditionalUNetConfig config) => config.ForwardFlops();

    /// <summary>FLOPs of the label-independent trunk for one image.</summary>
    /// <param name="config">The architecture.</param>
    public static double Trunk(ConditionalUNetConfig config) => config.TrunkFlops();

    /// <summary>FLOPs of the label-dependent head for one image and one label.</summary>
    /// <param name="config">The architecture.</param>
    public static double Head(ConditionalUNetConfig config) => config.HeadFlops();

    /// <summary>
    /// FLOPs of <paramref name="trunks"/> trunk evaluations and <paramref name="heads"/> head evaluations (each for
    /// one image).
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="trunks">Trunk evaluations.</param>
    /// <param name="heads">Head evaluations.</param>
    public static double TrunkAndHeads(ConditionalUNetConfig config, double trunks, double heads) =>
        PredictionCost.Flops(config, trunks, heads);

    /// <summary>
    /// Network work of classifying one image with <see cref="BayesClassifier"/> at <paramref name="n"/> samples:
    /// noise predictions (head evaluations, or full forwards without trunk sharing) and trunk evaluations. With
    /// pruning, stage s scores the classes that survived the previous stage on its new samples; every sample is
    /// scored for at least one class, so a shared trunk runs n times. Matches
    /// <see cref="ClassPrediction.NetworkEvaluations"/> and <see cref="ClassPrediction.TrunkEvaluations"/>.
    /// </summary>
    /// <param name="classes">Number of classes.</param>
    /// <param name="n">Monte Carlo samples.</param>
    /// <param name="options">The estimator.</param>
    public static (long Evaluations, long Trunks) PredictEvaluations(int classes, int n, BayesClassifierOptions options) =>
        PredictionCost.Planned(classes, n, options);

    /// <summary>FLOPs of classifying one image (see <see cref="PredictEvaluations"/>).</summary>
    /// <param name="config">The architecture.</param>
    /// <param name="n">Monte Carlo samples.</param>
    /// <param name="options">The estimator.</param>
    public static double Predict(ConditionalUNetConfig config, int n, BayesClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (evaluations, trunks) = PredictionCost.Planned(config.Classes, n, options);
        return PredictionCost.Flops(config, trunks, evaluations);
    }

    /// <summary>
    /// FLOPs of one training step on <paramref name="batch"/> images: a forward and a backward pass, the backward
    /// counted as twice the forward (input and weight gradients), the usual convention.
    /// </summary>
    /// <param name="config">The architecture.</param>
    /// <param name="batch">Batch size.</param>
    public static double TrainingStep(ConditionalUNetConfig config, double batch) => 3 * batch * config.ForwardFlops();

    /// <summary>FLOPs of an n x n by n x n matrix product.</summary>
    /// <param name="n">Matrix size.</param>
    public static double Matmul(long n) => 2.0 * n * n * n;

    /// <summary>
    /// Counts the FLOPs of one forward of <paramref name="model"/> for one image by running it once on
    /// <paramref name="batch"/> zero images with hooks on every convolution, transposed convolution and linear
    /// layer, reading the actual input and output shapes. An independent check of
    /// <see cref="ConditionalUNetConfig.ForwardFlops"/>.
    /// </summary>
    /// <param name="model">The network (its mode is left unchanged; the pass runs without gradients).</param>
    /// <param name="batch">Images in the probe batch.</param>
    /// <returns>FLOPs per image of the trunk and of the head.</returns>
    public static (double Trunk, double Head) CountFromModules(ConditionalUNet model, int batch = 2)
    {
        ArgumentNullException.ThrowIfNull(model);
        var config = model.Config;
        double total = 0;
        var removers = new List<Action>();
        foreach (var (_, module) in model.named_modules())
        {
            if (module is Conv2d or ConvTranspose2d or Linear)
            {
                var m = (nn.Module<Tensor, Tensor>)module;
                var handle = m.register_forward_hook((mod, input, output) =>
                {
                    total += LayerFlops(mod, input, output);
                    return output;
                });
                removers.Add(() => handle.remove());
            }
        }
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var device = model.parameters().First().device;
            var x = zeros(new long[] { batch, config.InChannels, config.Height, config.Width }, device: device);
            var labels = zeros(new long[] { batch }, ScalarType.Int64, device);
            var t = full(new long[] { batch }, 0.5f, device: device);
            using (var trunk = model.Trunk(x))
            {
                double trunkTotal = total;
                total = 0;
                model.Head(trunk, labels, t);
                return (trunkTotal / batch, total / batch);
            }
        }
        finally
        {
            foreach (var remove in removers)
                remove();
        }
    }

    private static double LayerFlops(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output)
    {
        switch (module)
        {
            case Conv2d conv:
            {
                // Every output element takes in_channels * kh * kw multiply-adds.
                var w = conv.weight!.shape;
                return 2.0 * output.numel() * w[1] * w[2] * w[3];
            }
            case ConvTranspose2d deconv:
            {
                // Every input element is scattered to out_channels * kh * kw outputs.
                var w = deconv.weight!.shape;
                return 2.0 * input.numel() * w[1] * w[2] * w[3];
            }
            case Linear linear:
            {
                var w = linear.weight!.shape;
                return 2.0 * (input.numel() / w[1]) * w[0] * w[1];
            }
            default:
                return 0;
        }
    }
}
