using DiffusionClassifier.Data;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Cli;

/// <summary>
/// Files the CLI tests work on, in a temporary folder: a tiny 28 x 28 model (F = 8, T = 20, so that sampling and
/// classification take milliseconds), MNIST-format train and test files of generated digits, and PNG images.
/// </summary>
public sealed class CliFixture : IDisposable
{
    public const int TestItems = 12;
    public const int TrainItems = 16;
    public const int Timesteps = 20;

    public CliFixture()
    {
        Folder = Directory.CreateTempSubdirectory("dc-cli-tests-").FullName;
        ModelPath = Path.Combine(Folder, "tiny.safetensors");
        using (var model = TinyModels.Create(TinyModels.Config(features: 8, side: 28), seed: 7))
            ModelFile.Save(ModelPath, model, new DdpmScheduler(Timesteps), new Dictionary<string, string> { ["note"] = "tiny test model" });

        DataFolder = Path.Combine(Folder, "mnist");
        var random = new Random(11);
        TestPixels = Digits(random, TestItems);
        TestLabels = Enumerable.Range(0, TestItems).Select(i => (byte)(i % 10)).ToArray();
        IdxFile.WriteImages(Path.Combine(DataFolder, MnistFiles.TestImages), TestPixels, TestItems, 28, 28);
        IdxFile.WriteLabels(Path.Combine(DataFolder, MnistFiles.TestLabels), TestLabels);
        IdxFile.WriteImages(Path.Combine(DataFolder, MnistFiles.TrainImages), Digits(random, TrainItems), TrainItems, 28, 28, gzip: true);
        IdxFile.WriteLabels(Path.Combine(DataFolder, MnistFiles.TrainLabels), Enumerable.Range(0, TrainItems).Select(i => (byte)(i % 10)).ToArray(), gzip: true);

        ImagePaths = new string[2];
        for (int i = 0; i < ImagePaths.Length; i++)
        {
            ImagePaths[i] = Path.Combine(Folder, $"digit{i}.png");
            using var image = tensor(TestPixels.AsSpan(i * 784, 784).ToArray(), [1, 28, 28], ScalarType.Byte).to_type(ScalarType.Float32).div_(255f);
            ImageIO.SavePng(image, ImagePaths[i]);
        }
    }

    public string Folder { get; }
    public string ModelPath { get; }
    public string DataFolder { get; }
    public string[] ImagePaths { get; }
    public byte[] TestPixels { get; }
    public byte[] TestLabels { get; }

    public string TestImagesPath => Path.Combine(DataFolder, MnistFiles.TestImages);
    public string TestLabelsPath => Path.Combine(DataFolder, MnistFiles.TestLabels);

    /// <summary>A fresh path in the fixture folder.</summary>
    public string NewPath(string name) => Path.Combine(Folder, $"{Guid.NewGuid():N}-{name}");

    /// <summary>The test images as float32 [N, 1, 28, 28] in [0, 1] (the caller disposes).</summary>
    public Tensor TestImages() => tensor(TestPixels, [TestItems, 1, 28, 28], ScalarType.Byte).to_type(ScalarType.Float32).div_(255f);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Blobs of varying position and size on black: values span 0..255 like MNIST.</summary>
    private static byte[] Digits(Random random, int count)
    {
        var pixels = new byte[count * 784];
        for (int n = 0; n < count; n++)
        {
            int cx = random.Next(8, 20), cy = random.Next(8, 20), r = random.Next(3, 8);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    double d = Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
                    pixels[n * 784 + y * 28 + x] = (byte)Math.Clamp(255 * (1.5 - d / r), 0, 255);
                }
        }
        return pixels;
    }
}
