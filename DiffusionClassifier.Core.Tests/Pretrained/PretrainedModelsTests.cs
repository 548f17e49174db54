using System.Security.Cryptography;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Pretrained;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class PretrainedModelsTests : IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    [Fact]
    public void TestDigitsAreTheFirst500OfTheOfficialTestSet()
    {
        using var digits = PretrainedModels.LoadMnistTestDigits();
        using var scope = NewDisposeScope();

        Assert.Equal(PretrainedModels.MnistTestDigitCount, digits.Count);
        Assert.Equal([500L, 1, 28, 28], digits.Images.shape);
        Assert.Equal(ScalarType.Float32, digits.Images.dtype);
        var bytes = digits.Images.mul(255).round().to_type(ScalarType.Byte);
        Assert.True(digits.Images.mul(255).sub(bytes.to_type(ScalarType.Float32)).abs().max().item<float>() < 1e-4f);
        // SHA-256 of bytes 16..392015 of t10k-images-idx3-ubyte (SHA-256 0fa7898d...) and the label histogram of items 0..499.
        Assert.Equal("6e96778c418dfcfff0dcfdbcb4af54d86e5c54326bf5e7ead99cf94b6434a405", Convert.ToHexStringLower(SHA256.HashData(bytes.bytes)));
        var labels = digits.Labels.data<long>().ToArray();
        Assert.Equal([42, 67, 55, 45, 55, 50, 43, 49, 40, 54], Enumerable.Range(0, 10).Select(d => labels.Count(l => l == d)).ToArray());
        Assert.Equal([7L, 2, 1, 0, 4, 1, 4, 9, 5, 9], labels.Take(10).ToArray());
    }

    [Fact]
    public void DefaultModelIsAnMnistModelInEvalMode()
    {
        using var loaded = PretrainedModels.LoadMnistDefault();

        var config = loaded.Model.Config;
        Assert.Equal((1, 10, 28, 28), (config.InChannels, config.Classes, config.Height, config.Width));
        Assert.Equal(400, loaded.Scheduler.NumTrainTimesteps);
        Assert.False(loaded.Model.training);
        Assert.All(loaded.Model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        using var stream = PretrainedModels.OpenMnistDefault();
        Assert.True(stream.Length < 8_000_000, $"the embedded model is {stream.Length} bytes");
        // Trained without the validation split and calibrated on it (Pretrained/NOTICE.md).
        var calibration = Assert.IsType<ProbabilityCalibration>(loaded.Calibration);
        Assert.InRange(calibration.Temperature, 0.01, 1.0);
        Assert.Equal(20, calibration.Samples);
        Assert.Equal(5000, calibration.Items);
    }

    [Fact]
    public void CreateMnistClassifierRecognisesTheFirstTestDigits()
    {
        using var digits = PretrainedModels.LoadMnistTestDigits();
        // Float32: Auto would pick bfloat16 on some machines only, and this test is about the model and the host-app path.
        var classifier = PretrainedModels.CreateMnistClassifier(BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32 });
        using (classifier)
        {
            using var images = digits.Images.narrow(0, 0, 20);
            var predictions = classifier.PredictBatch(images, 20);
            var labels = digits.Labels.data<long>().Take(20).ToArray();
            int correct = predictions.Zip(labels).Count(p => p.First.Label == p.Second);
            Assert.True(correct >= 17, $"{correct}/20 correct: {string.Join(" ", predictions.Select(p => p.Label))}");

            // The embedded model's calibration is applied; the paper's posterior stays available.
            Assert.Equal(classifier.Calibration!.Temperature, classifier.Temperature);
            Assert.All(predictions, p => Assert.True(p.Confidence >= p.PaperProbabilities[p.Label]));

            // The host-app path: one 28 x 28 digit as bytes.
            var pixels = digits.Images[0].mul(255).round().to_type(ScalarType.Byte).data<byte>().ToArray();
            Assert.Equal(7, classifier.Predict(pixels, 20).Label);
        }
        Assert.Throws<ObjectDisposedException>(() => classifier.Predict(new byte[784], 1));
    }
}
