using System.Buffers.Binary;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

[Collection(SerializationCollection.Name)]
public class ModelFileTests
{
    private const string TinyConfigJson = """{"in_channels":1,"features":8,"classes":10,"height":8,"width":8}""";
    private const string DefaultScheduleJson = """{"num_train_timesteps":400,"beta_start":0.0001,"beta_end":0.02}""";

    private static string TempPath() => Path.Combine(Path.GetTempPath(), $"mf-{Guid.NewGuid():N}.safetensors");

    /// <summary>Sets every BatchNorm running statistic and counter to random non-default values.</summary>
    internal static void RandomiseBatchNormStats(ConditionalUNet net, long seed)
    {
        var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, t) in net.state_dict())
        {
            if (name.EndsWith("running_mean", StringComparison.Ordinal)) t.copy_(randn(t.shape, generator: g) * 0.3);
            else if (name.EndsWith("running_var", StringComparison.Ordinal)) t.copy_(rand(t.shape, generator: g) + 0.5);
            else if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) t.fill_(17);
        }
    }

    private static void AssertBitIdentical(ConditionalUNet expected, ConditionalUNet actual, int batch, long seed)
    {
        var cfg = expected.Config;
        var g = new Generator((ulong)seed);
        using var x = randn([batch, cfg.InChannels, cfg.Height, cfg.Width], generator: g);
        using var c = randint(0, cfg.Classes, [batch], ScalarType.Int64, generator: g);
        using var t = rand([batch], generator: g);
        using var mask = (arange(batch) % 3).eq(1).to(ScalarType.Float32); // some labels dropped
        using var noGrad = no_grad();
        using var a = expected.forward(x, c, t, mask);
        using var b = actual.forward(x, c, t, mask);
        Assert.Equal(a.bytes.ToArray(), b.bytes.ToArray());
    }

    private static Dictionary<string, string> Meta(string config = TinyConfigJson, string schedule = DefaultScheduleJson) => new()
    {
        [ModelFile.FormatKey] = ModelFile.FormatName,
        [ModelFile.FormatVersionKey] = "1",
        [ModelFile.ConfigKey] = config,
        [ModelFile.ScheduleKey] = schedule,
    };

    private static byte[] Bytes(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> meta)
    {
        using var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    private static InvalidDataException Refused(byte[] bytes, string name = "test.safetensors") =>
        Assert.Throws<InvalidDataException>(() => ModelFile.Read(new MemoryStream(bytes), sourceName: name).Dispose());

    [Fact]
    public void LoadedModelGivesBitIdenticalOutputs()
    {
        string path = TempPath();
        try
        {
            using var net = TinyModels.Create();
            // Non-trivial BatchNorm statistics: one training-mode forward.
            using (var warm = net.forward(rand(4, 1, 8, 8), tensor(new long[] { 0, 1, 2, 3 }), rand(4))) { }
            net.eval();
            var scheduler = new DdpmScheduler(50, 2e-4, 0.03);
            ModelFile.Save(path, net, scheduler, new Dictionary<string, string> { ["note"] = "test" });
            using var loaded = ModelFile.Load(path);
            Assert.Equal(net.Config, loaded.Model.Config);
            Assert.Equal(50, loaded.Scheduler.NumTrainTimesteps);
            Assert.Equal(2e-4, loaded.Scheduler.BetaStart);
            Assert.Equal(0.03, loaded.Scheduler.BetaEnd);
            Assert.Equal("test", loaded.Metadata["note"]);
            Assert.False(loaded.Model.training);
            AssertBitIdentical(net, loaded.Model, 5, 7);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MnistSizedModelWithNonDefaultBatchNormStatsIsBitIdenticalAfterLoad()
    {
        using var net = TinyModels.Create(ConditionalUNetConfig.Mnist(32), seed: 99);
        RandomiseBatchNormStats(net, 5);
        net.eval();
        using var ms = new MemoryStream();
        ModelFile.Write(ms, net, new DdpmScheduler());
        ms.Position = 0;
        using var loaded = ModelFile.Read(ms, device: CPU, sourceName: "mnist-32");
        Assert.Equal(ConditionalUNetConfig.Mnist(32), loaded.Model.Config);
        foreach (var (name, t) in net.state_dict())
            Assert.Equal(t.bytes.ToArray(), loaded.Model.state_dict()[name].bytes.ToArray());
        Assert.Equal(17L, loaded.Model.state_dict()["down1.model.0.conv2.1.num_batches_tracked"].item<long>());
        AssertBitIdentical(net, loaded.Model, 4, 11);
        Assert.Equal(TorchSharp.DeviceType.CPU, loaded.Model.state_dict()["out.3.weight"].device_type);
    }

    [Fact]
    public void ExtraTensorsAndDetachedModelOutliveTheLoadedModel()
    {
        using var net = TinyModels.Create();
        net.eval();
        using var step = tensor(new long[] { 42 });
        using var ms = new MemoryStream();
        ModelFile.Write(ms, net, new DdpmScheduler(), extraTensors: new Dictionary<string, Tensor> { ["optimizer.step"] = step });
        ms.Position = 0;
        ConditionalUNet detached;
        Tensor extra;
        using (var loaded = ModelFile.Read(ms))
        {
            Assert.Equal(["optimizer.step"], loaded.ExtraTensors.Keys);
            extra = loaded.ExtraTensors["optimizer.step"].clone();
            detached = loaded.DetachModel();
            Assert.Throws<InvalidOperationException>(() => loaded.Model);
        }
        using (detached)
        using (extra)
        {
            Assert.Equal(42L, extra.item<long>());
            AssertBitIdentical(net, detached, 2, 3);
        }
    }

    [Fact]
    public void ReservedMetadataKeysAreRefusedOnSave()
    {
        using var net = TinyModels.Create();
        var ex = Assert.Throws<ArgumentException>(() => ModelFile.Write(new MemoryStream(), net, new DdpmScheduler(),
            new Dictionary<string, string> { [ModelFile.ConfigKey] = "x" }));
        Assert.Contains("'config'", ex.Message);
    }

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => ModelFile.Load(TempPath()));
        Assert.Contains("No model file", ex.Message);
    }

    [Fact]
    public void AnotherArchitectureIsRefusedNamingTheKeyAndTheFile()
    {
        string path = TempPath();
        try
        {
            using var net = TinyModels.Create();
            var tensors = net.state_dict().ToDictionary(p => p.Key, p => p.Value);
            using var wrong = zeros(3, 3);
            tensors["out.3.weight"] = wrong;
            SafeTensors.Save(path, tensors, Meta());
            var ex = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));
            Assert.Contains("'out.3.weight' has shape [3, 3] but the architecture needs [1, 8, 3, 3]", ex.Message);
            Assert.Contains(path, ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingExtraWrongShapeAndWrongDtypeTensorsNameTheFirstMismatchingKey()
    {
        using var net = TinyModels.Create();
        var good = net.state_dict().ToDictionary(p => p.Key, p => p.Value);
        string first = good.Keys.First();

        var missing = new Dictionary<string, Tensor>(good);
        missing.Remove("up1.model.0.weight");
        missing.Remove("out.0.bias");
        Assert.Contains("Missing tensor 'up1.model.0.weight'", Refused(Bytes(missing, Meta())).Message);

        using var extraTensor = zeros(2);
        var extra = new Dictionary<string, Tensor>(good) { ["up9.weight"] = extraTensor };
        Assert.Contains("Unexpected tensor 'up9.weight'", Refused(Bytes(extra, Meta())).Message);

        using var wrongShape = zeros(8, 1, 3, 2);
        var shape = new Dictionary<string, Tensor>(good) { [first] = wrongShape };
        var ex = Refused(Bytes(shape, Meta()));
        Assert.Contains($"'{first}' has shape [8, 1, 3, 2]", ex.Message);
        Assert.Contains("'test.safetensors'", ex.Message);

        using var asDouble = good["down2.model.0.conv1.0.weight"].to(ScalarType.Float64);
        var dtype = new Dictionary<string, Tensor>(good) { ["down2.model.0.conv1.0.weight"] = asDouble };
        Assert.Contains("'down2.model.0.conv1.0.weight' has dtype Float64 but the architecture needs Float32", Refused(Bytes(dtype, Meta())).Message);

        using var counterAsFloat = good["init_conv.conv1.1.num_batches_tracked"].to(ScalarType.Float32);
        var counter = new Dictionary<string, Tensor>(good) { ["init_conv.conv1.1.num_batches_tracked"] = counterAsFloat };
        Assert.Contains("'init_conv.conv1.1.num_batches_tracked' has dtype Float32", Refused(Bytes(counter, Meta())).Message);
    }

    public static TheoryData<string?, string?, string?, string?, string> BadMetadata() => new()
    {
        { null, "1", TinyConfigJson, DefaultScheduleJson, "metadata 'format' is missing" },
        { "pt", "1", TinyConfigJson, DefaultScheduleJson, "metadata 'format' is 'pt'" },
        { ModelFile.FormatName, null, TinyConfigJson, DefaultScheduleJson, "version missing" },
        { ModelFile.FormatName, "2", TinyConfigJson, DefaultScheduleJson, "version '2'" },
        { ModelFile.FormatName, "1", null, DefaultScheduleJson, "no 'config' metadata" },
        { ModelFile.FormatName, "1", TinyConfigJson, null, "no 'schedule' metadata" },
        { ModelFile.FormatName, "1", "{", DefaultScheduleJson, "'config' metadata is not valid JSON" },
        { ModelFile.FormatName, "1", "[1,2]", DefaultScheduleJson, "'config' metadata is a JSON Array" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":8,"classes":10,"height":8}""", DefaultScheduleJson, "lacks the field 'width'" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":8,"classes":10,"height":8,"width":8,"depth":3}""", DefaultScheduleJson, "unknown field 'depth'" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":8,"classes":10,"height":8,"width":8,"width":8}""", DefaultScheduleJson, "not valid JSON" },
        { ModelFile.FormatName, "1", """{"in_channels":"1","features":8,"classes":10,"height":8,"width":8}""", DefaultScheduleJson, "'in_channels' is \"1\", not a 32-bit integer" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":8.5,"classes":10,"height":8,"width":8}""", DefaultScheduleJson, "'features' is 8.5" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":1e12,"classes":10,"height":8,"width":8}""", DefaultScheduleJson, "'features' is 1e12" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":12,"classes":10,"height":8,"width":8}""", DefaultScheduleJson, "invalid network" },
        { ModelFile.FormatName, "1", """{"in_channels":1,"features":8,"classes":0,"height":8,"width":8}""", DefaultScheduleJson, "Classes" },
        { ModelFile.FormatName, "1", TinyConfigJson, """{"num_train_timesteps":400,"beta_start":0.0001}""", "lacks the field 'beta_end'" },
        { ModelFile.FormatName, "1", TinyConfigJson, """{"num_train_timesteps":400,"beta_start":0.0001,"beta_end":1.5}""", "invalid schedule" },
        { ModelFile.FormatName, "1", TinyConfigJson, """{"num_train_timesteps":0,"beta_start":0.0001,"beta_end":0.02}""", "invalid schedule" },
        { ModelFile.FormatName, "1", TinyConfigJson, """{"num_train_timesteps":2000000000,"beta_start":0.0001,"beta_end":0.02}""", "above the limit of 100000" },
        { ModelFile.FormatName, "1", TinyConfigJson, """{"num_train_timesteps":400,"beta_start":"x","beta_end":0.02}""", "'beta_start' is \"x\", not a finite number" },
    };

    [Theory]
    [MemberData(nameof(BadMetadata))]
    public void BadMetadataIsRefusedWithAReason(string? format, string? version, string? config, string? schedule, string expected)
    {
        using var net = TinyModels.Create();
        var meta = new Dictionary<string, string>();
        if (format is not null) meta[ModelFile.FormatKey] = format;
        if (version is not null) meta[ModelFile.FormatVersionKey] = version;
        if (config is not null) meta[ModelFile.ConfigKey] = config;
        if (schedule is not null) meta[ModelFile.ScheduleKey] = schedule;
        var ex = Refused(Bytes(net.state_dict().ToDictionary(p => p.Key, p => p.Value), meta));
        Assert.Contains(expected, ex.Message);
        Assert.Contains("'test.safetensors' is not a valid model file", ex.Message);
    }

    [Fact]
    public void AConfigAskingForAHugeNetworkIsRefusedBeforeAllocation()
    {
        // F = 2^20 would need ~10^13 parameters: refused by the configuration's own size limit
        // (ConditionalUNetConfig.MaxStateElements) or, below it, by the comparison with the elements the file holds.
        const string Refusal = "(but the file holds only|parameter and buffer elements; at most)";
        using var net = TinyModels.Create();
        var meta = Meta("""{"in_channels":1,"features":1048576,"classes":10,"height":8,"width":8}""");
        var ex = Refused(Bytes(net.state_dict().ToDictionary(p => p.Key, p => p.Value), meta));
        Assert.Matches(Refusal, ex.Message);
        meta = Meta("""{"in_channels":1,"features":8,"classes":10,"height":2147483644,"width":2147483644}""");
        ex = Refused(Bytes(net.state_dict().ToDictionary(p => p.Key, p => p.Value), meta));
        Assert.Matches(Refusal, ex.Message);
        // Below the configuration limit, a network larger than the file holds is refused by the comparison.
        meta = Meta("""{"in_channels":1,"features":512,"classes":10,"height":8,"width":8}""");
        ex = Refused(Bytes(net.state_dict().ToDictionary(p => p.Key, p => p.Value), meta));
        Assert.Contains("but the file holds only", ex.Message);
    }

    [Theory]
    [InlineData(1, 8, 10, 8, 8)]
    [InlineData(1, 32, 10, 28, 28)]
    [InlineData(3, 16, 5, 16, 12)]
    [InlineData(2, 24, 1, 4, 32)]
    public void TheSizeCheckCountsExactlyTheStateDictElements(int c, int f, int k, int h, int w)
    {
        var config = new ConditionalUNetConfig(c, f, k, h, w);
        using var net = new ConditionalUNet(config);
        long actual = net.state_dict().Values.Sum(t => t.numel());
        Assert.Equal(actual, StateDictBudgetProbe.ElementCount(config));
    }

    [Fact]
    public void TruncationsAtManyLengthsAreRefusedNamingTheFile()
    {
        using var net = TinyModels.Create();
        using var ms = new MemoryStream();
        ModelFile.Write(ms, net, new DdpmScheduler());
        var bytes = ms.ToArray();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var lengths = Enumerable.Range(0, headerEnd + 64).Concat(Enumerable.Range(0, 200).Select(i => headerEnd + 64 + i * (bytes.Length - headerEnd - 65) / 200));
        int n = 0;
        foreach (int len in lengths.Where(l => l < bytes.Length).Distinct())
        {
            var ex = Refused(bytes[..len], "cut.safetensors");
            Assert.Contains("'cut.safetensors'", ex.Message);
            n++;
        }
        Assert.True(n > headerEnd);
    }

    [Fact]
    public void ModelFileFromDiskMatchesModelFileFromStream()
    {
        string path = TempPath();
        try
        {
            using var net = TinyModels.Create();
            net.eval();
            ModelFile.Save(path, net, new DdpmScheduler(10, 1e-3, 0.05));
            using var a = ModelFile.Load(path);
            using var s = File.OpenRead(path);
            using var b = ModelFile.Read(s);
            AssertBitIdentical(a.Model, b.Model, 3, 1);
            Assert.Equal(a.Metadata, b.Metadata);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ReadDescriptionReadsConfigAndScheduleWithoutTheNetwork()
    {
        var (config, scheduler) = ModelFile.ReadDescription(Meta(schedule: """{"num_train_timesteps":50,"beta_start":0.0002,"beta_end":0.03}"""));
        Assert.Equal(TinyModels.Config(), config);
        Assert.Equal(50, scheduler.NumTrainTimesteps);
        Assert.Equal(0.03, scheduler.BetaEnd);
    }
}

/// <summary>Reaches the internal size check of the Serialization namespace.</summary>
internal static class StateDictBudgetProbe
{
    public static long? ElementCount(ConditionalUNetConfig config) =>
        (long?)typeof(ModelFile).Assembly.GetType("DiffusionClassifier.Serialization.StateDictBudget", throwOnError: true)!
            .GetMethod("ElementCount")!.Invoke(null, [config]);
}
