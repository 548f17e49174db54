using System.IO.Compression;
using System.Text;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

/// <summary>
/// Import of checkpoints written by PyTorch 1.13 (tools/pytorch/make_fixture.py; the fixtures are committed, the
/// tests never run Python).
/// </summary>
[Collection(SerializationCollection.Name)]
public class PyTorchCheckpointTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "TestData", "pytorch");
    // The hostile fixtures would create this file if anything executed their payload.
    private const string PayloadMarker = "/tmp/dc-pytorch-payload-executed";

    private static string Fixture(string name) => Path.Combine(Dir, name);

    private static InvalidDataException Refused(byte[] checkpoint, string name = "crafted.pth") =>
        Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.ReadStateDict(new MemoryStream(checkpoint), name).Dispose());

    /// <summary>Runs the imported network on the inputs PyTorch used and compares with PyTorch's output.</summary>
    private static void AssertMatchesPyTorch(ConditionalUNet model, string ioFixture)
    {
        using var io = SafeTensors.Load(Fixture(ioFixture));
        var x = io.Tensors["x"];
        var mask = io.Tensors["mask"];
        Assert.True(mask.sum().item<float>() > 0, "the fixture must drop some labels");
        using var noGrad = no_grad();
        using var eps = model.forward(x, io.Tensors["c"], io.Tensors["t"], mask);
        using var diff = (eps - io.Tensors["eps"]).abs().max();
        Assert.True(diff.item<float>() <= 1e-4f, $"max |ours - PyTorch| = {diff.item<float>()}");
        // The labels matter: the same inputs with all labels dropped give other outputs.
        using var unconditional = model.forward(x, io.Tensors["c"], io.Tensors["t"], ones_like(mask));
        using var change = (unconditional - io.Tensors["eps"]).abs().max();
        Assert.True(change.item<float>() > 0.05f, $"dropping the labels changed the output by only {change.item<float>()}");
    }

    [Fact]
    public void ReadsTheReferenceStateDictWithKeysShapesAndDtypes()
    {
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("reference_f16.pth"));
        Assert.Equal(135, sd.Count);
        Assert.Equal("alpha_t", sd.Keys.First()); // checkpoint order: a module lists its own buffers before its submodules
        Assert.Equal(new long[] { 16, 1, 3, 3 }, sd["nn_model.init_conv.conv1.0.weight"].shape);
        Assert.Equal(ScalarType.Int64, sd["nn_model.down1.model.0.conv2.1.num_batches_tracked"].dtype);
        Assert.Equal(3L, sd["nn_model.down1.model.0.conv2.1.num_batches_tracked"].item<long>());
        Assert.Equal(new long[] { 401 }, sd["sqrtab"].shape);
        Assert.All(sd.Values.Where(t => t.dtype != ScalarType.Int64), t => Assert.Equal(ScalarType.Float32, t.dtype));
        Assert.Equal(sd.Keys.Count(k => k.StartsWith("nn_model.", StringComparison.Ordinal)) + 7, sd.Count);
    }

    [Fact]
    public void ImportedReferenceModelReproducesPyTorchOutputs()
    {
        using var loaded = PyTorchCheckpoint.Load(Fixture("reference_f16.pth"));
        Assert.Equal(new ConditionalUNetConfig(1, 16, 10, 28, 28), loaded.Model.Config);
        Assert.False(loaded.Model.training);
        Assert.Equal(400, loaded.Scheduler.NumTrainTimesteps);
        Assert.Equal(1e-4, loaded.Scheduler.BetaStart);
        Assert.Equal(0.02, loaded.Scheduler.BetaEnd);
        Assert.Equal("checkpoint", loaded.Metadata["schedule_source"]);
        AssertMatchesPyTorch(loaded.Model, "reference_f16.io.safetensors");
    }

    [Fact]
    public void ImportInfersAnotherShapeAndScheduleAndReproducesPyTorch()
    {
        using var loaded = PyTorchCheckpoint.Load(Fixture("small_c3_f8.pth"), device: CPU);
        Assert.Equal(new ConditionalUNetConfig(3, 8, 5, 16, 12), loaded.Model.Config);
        Assert.Equal(50, loaded.Scheduler.NumTrainTimesteps);
        Assert.Equal(2e-4, loaded.Scheduler.BetaStart);
        Assert.Equal(0.03, loaded.Scheduler.BetaEnd);
        AssertMatchesPyTorch(loaded.Model, "small_c3_f8.io.safetensors");

        // The rebuilt schedule agrees with PyTorch's float32 buffers (the import verified 1e-5; check here independently).
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("small_c3_f8.pth"));
        var stored = sd["mab_over_sqrtmab"].data<float>().ToArray();
        for (int i = 0; i < stored.Length; i++)
            Assert.True(Math.Abs(stored[i] - loaded.Scheduler.MabOverSqrtMab[i]) < 1e-5, $"mab_over_sqrtmab[{i}]");
    }

    [Fact]
    public void FromPyTorchAndLoadIntoWithAnExplicitConfigGiveTheSameNetwork()
    {
        using var inferred = PyTorchCheckpoint.FromPyTorch(Fixture("reference_f16.pth"));
        using var explicitConfig = PyTorchCheckpoint.FromPyTorch(Fixture("reference_f16.pth"), ConditionalUNetConfig.Mnist(16));
        using var manual = new ConditionalUNet(ConditionalUNetConfig.Mnist(16));
        PyTorchCheckpoint.LoadInto(manual, Fixture("reference_f16.pth"));
        manual.eval();
        foreach (var (k, v) in inferred.state_dict())
        {
            Assert.Equal(v.bytes.ToArray(), explicitConfig.state_dict()[k].bytes.ToArray());
            Assert.Equal(v.bytes.ToArray(), manual.state_dict()[k].bytes.ToArray());
        }
        AssertMatchesPyTorch(manual, "reference_f16.io.safetensors");
    }

    [Fact]
    public void ABareNetworkStateDictLoadsWithAnEmptyPrefixAndTheDefaultSchedule()
    {
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("small_c3_f8.pth"));
        var bare = sd.Where(p => p.Key.StartsWith("nn_model.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["nn_model.".Length..], p => p.Value);
        var config = PyTorchCheckpoint.InferConfig(bare, prefix: "");
        Assert.Equal(new ConditionalUNetConfig(3, 8, 5, 16, 12), config);
        Assert.Null(PyTorchCheckpoint.InferScheduler(bare));
        using var model = new ConditionalUNet(config);
        PyTorchCheckpoint.LoadInto(model, bare, prefix: "");
        model.eval();
        AssertMatchesPyTorch(model, "small_c3_f8.io.safetensors");
    }

    [Fact]
    public void ConversionToAModelFileReloadsWithIdenticalOutputs()
    {
        string path = Path.Combine(Path.GetTempPath(), $"conv-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (config, scheduler) = PyTorchCheckpoint.ConvertToModelFile(Fixture("small_c3_f8.pth"), path);
            Assert.Equal(new ConditionalUNetConfig(3, 8, 5, 16, 12), config);
            Assert.Equal(50, scheduler.NumTrainTimesteps);
            using var converted = ModelFile.Load(path);
            using var imported = PyTorchCheckpoint.FromPyTorch(Fixture("small_c3_f8.pth"));
            Assert.Equal("small_c3_f8.pth", converted.Metadata["converted_from"]);
            Assert.Equal(0.03, converted.Scheduler.BetaEnd);
            var g = new Generator(3);
            using var x = randn([4, 3, 16, 12], generator: g);
            using var c = tensor(new long[] { 0, 4, 2, 1 });
            using var t = rand([4], generator: g);
            using var mask = tensor(new float[] { 0, 1, 0, 1 });
            using var noGrad = no_grad();
            using var a = imported.forward(x, c, t, mask);
            using var b = converted.Model.forward(x, c, t, mask);
            Assert.Equal(a.bytes.ToArray(), b.bytes.ToArray());
            AssertMatchesPyTorch(converted.Model, "small_c3_f8.io.safetensors");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AWrongShapeTensorIsRefusedNamingTheKeyAndTheFile()
    {
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.FromPyTorch(Fixture("wrong_shape.pth")));
        Assert.Contains("'nn_model.down2.model.0.conv2.0.weight' has shape [16, 16, 3, 1] but the architecture needs [16, 16, 3, 3]", ex.Message);
        Assert.Contains("wrong_shape.pth", ex.Message);
    }

    [Fact]
    public void ACheckpointForAnotherArchitectureNamesTheFirstMismatchingKey()
    {
        using var model = new ConditionalUNet(ConditionalUNetConfig.Mnist(8));
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, Fixture("reference_f16.pth")));
        Assert.Contains("'nn_model.init_conv.conv1.0.weight' has shape [16, 1, 3, 3] but the architecture needs [8, 1, 3, 3]", ex.Message);
        Assert.Contains("reference_f16.pth", ex.Message);
        // A wrong prefix: every model key is missing, the first one is named.
        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, Fixture("reference_f16.pth"), prefix: "model."));
        Assert.Contains("Missing tensor 'model.init_conv.conv1.0.weight'", ex.Message);
    }

    [Fact]
    public void MissingAndUnexpectedKeysAreNamed()
    {
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("small_c3_f8.pth"));
        using var model = new ConditionalUNet(new ConditionalUNetConfig(3, 8, 5, 16, 12));
        var missing = sd.Where(p => p.Key != "nn_model.up2.model.1.conv1.1.running_var").ToDictionary(p => p.Key, p => p.Value);
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, missing));
        Assert.Contains("Missing tensor 'nn_model.up2.model.1.conv1.1.running_var'", ex.Message);
        using var extraTensor = zeros(1);
        var extra = sd.ToDictionary(p => p.Key, p => p.Value);
        extra["nn_model.attention.weight"] = extraTensor;
        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, extra));
        Assert.Contains("Unexpected tensor 'nn_model.attention.weight'", ex.Message);
        extra.Remove("nn_model.attention.weight");
        extra["ema.decay"] = extraTensor;
        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, extra));
        Assert.Contains("Unexpected tensor 'ema.decay'", ex.Message);
        using var asDouble = sd["nn_model.out.3.bias"].to(ScalarType.Float64);
        var dtype = sd.ToDictionary(p => p.Key, p => p.Value);
        dtype["nn_model.out.3.bias"] = asDouble;
        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.LoadInto(model, dtype));
        Assert.Contains("'nn_model.out.3.bias' has dtype Float64", ex.Message);
    }

    [Fact]
    public void ConfigInferenceNamesTheKeyItCannotUse()
    {
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("small_c3_f8.pth"));
        var d = sd.ToDictionary(p => p.Key, p => p.Value);
        d.Remove("nn_model.contextembed1.model.0.weight");
        Assert.Contains("Missing tensor 'nn_model.contextembed1.model.0.weight'", Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferConfig(d)).Message);
        using var flat = zeros(16);
        d = sd.ToDictionary(p => p.Key, p => p.Value);
        d["nn_model.up0.0.weight"] = flat;
        Assert.Contains("'nn_model.up0.0.weight' has shape [16]", Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferConfig(d)).Message);
        using var twelve = zeros(12, 3, 3, 3);
        d = sd.ToDictionary(p => p.Key, p => p.Value);
        d["nn_model.init_conv.conv1.0.weight"] = twelve;
        Assert.Contains("'nn_model.contextembed1.model.0.weight' has shape [16, 5] but [24, n_classes]", Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferConfig(d)).Message);
    }

    [Fact]
    public void ScheduleIsRecoveredAndVerified()
    {
        var reference = new DdpmScheduler(400, 1e-4, 0.02);
        var buffers = Buffers(reference, ScalarType.Float32);
        try
        {
            var s = PyTorchCheckpoint.InferScheduler(buffers)!;
            Assert.Equal((400, 1e-4, 0.02), (s.NumTrainTimesteps, s.BetaStart, s.BetaEnd));

            // A tampered entry is named.
            using (no_grad()) buffers["sqrtmab"][123] = buffers["sqrtmab"][123] + 1e-4f;
            var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferScheduler(buffers));
            Assert.Contains("'sqrtmab'[123]", ex.Message);
        }
        finally
        {
            foreach (var t in buffers.Values) t.Dispose();
        }

        // A cosine-like (non-linear) schedule with the same end points is not the reference's schedule.
        var other = Buffers(new DdpmScheduler(400, 1e-4, 0.02), ScalarType.Float64);
        try
        {
            using var t = linspace(0, 1, 401, ScalarType.Float64);
            var betas = 1e-4 + (0.02 - 1e-4) * (1 - (t * Math.PI / 2).cos());
            other["sqrt_beta_t"].Dispose();
            other["sqrt_beta_t"] = betas.sqrt();
            Assert.Contains("not the reference's linear schedule", Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferScheduler(other)).Message);
            other.Remove("alpha_t", out var removed);
            removed!.Dispose();
            Assert.Contains("'alpha_t' is missing", Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.InferScheduler(other)).Message);
        }
        finally
        {
            foreach (var t in other.Values) t.Dispose();
        }
    }

    private static Dictionary<string, Tensor> Buffers(DdpmScheduler s, ScalarType dtype) => new()
    {
        ["alpha_t"] = tensor(s.Alphas.ToArray()).to(dtype),
        ["oneover_sqrta"] = tensor(s.OneOverSqrtAlphas.ToArray()).to(dtype),
        ["sqrt_beta_t"] = tensor(s.SqrtBetas.ToArray()).to(dtype),
        ["alphabar_t"] = tensor(s.AlphaBars.ToArray()).to(dtype),
        ["sqrtab"] = tensor(s.SqrtAlphaBars.ToArray()).to(dtype),
        ["sqrtmab"] = tensor(s.SqrtOneMinusAlphaBars.ToArray()).to(dtype),
        ["mab_over_sqrtmab"] = tensor(s.MabOverSqrtMab.ToArray()).to(dtype),
    };

    [Fact]
    public void ViewsDtypesScalarsAndSharedStoragesMatchPyTorch()
    {
        using var sd = PyTorchCheckpoint.ReadStateDict(Fixture("views.pth"));
        using var expected = SafeTensors.Load(Fixture("views.expected.safetensors"));
        Assert.Equal(expected.Tensors.Keys.Order(), sd.Keys.Order());
        foreach (var (k, e) in expected.Tensors)
        {
            Assert.Equal(e.dtype, sd[k].dtype);
            Assert.Equal(e.shape, sd[k].shape);
            Assert.True(sd[k].is_contiguous());
            Assert.Equal(e.bytes.ToArray(), sd[k].bytes.ToArray());
        }
        // Keys sharing one storage get independent tensors.
        using (no_grad()) sd["tied_a"].fill_(0);
        Assert.NotEqual(0f, sd["tied_b"].abs().sum().item<float>());
    }

    [Fact]
    public void HostilePicklesAreRefusedAndNothingIsExecuted()
    {
        File.Delete(PayloadMarker);
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.ReadStateDict(Fixture("hostile_zip.pth")));
        Assert.Contains("global 'posix.system'", ex.Message);
        Assert.Contains("hostile_zip.pth", ex.Message);

        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.FromPyTorch(Fixture("hostile_nested.pth")));
        Assert.Contains("global '__builtin__.eval'", ex.Message);

        ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.ReadStateDict(Fixture("hostile_raw.pkl")));
        Assert.Contains("bare pickle", ex.Message);
        Assert.False(File.Exists(PayloadMarker), "a payload was executed");
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("builtins", "exec")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch", "load")]
    [InlineData("torch._utils", "_rebuild_qtensor")]
    [InlineData("collections", "defaultdict")]
    public void GlobalsOutsideTheAllowListAreRefusedByName(string module, string name)
    {
        var pickle = new PickleBuilder().Proto().Global(module, name).Str("touch " + PayloadMarker).Op(0x85).Reduce().Stop().ToArray();
        var ex = Refused(CheckpointZip.Create(pickle));
        Assert.Contains($"global '{module}.{name}'", ex.Message);
        Assert.Contains("'crafted.pth'", ex.Message);
        // The same through STACK_GLOBAL (protocol 4).
        pickle = new PickleBuilder().Proto(4).Op(0x8c).Raw((byte)module.Length).Raw(Encoding.UTF8.GetBytes(module))
            .Op(0x8c).Raw((byte)name.Length).Raw(Encoding.UTF8.GetBytes(name)).Op(0x93).EmptyTuple().Reduce().Stop().ToArray();
        Assert.Contains($"global '{module}.{name}'", Refused(CheckpointZip.Create(pickle)).Message);
    }

    [Fact]
    public void ACraftedStateDictWithStridesOffsetsAndEveryStorageTypeLoads()
    {
        var floats = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        var longs = new long[] { -5, 1L << 40, 7 };
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark()
            .Str("view").Tensor("FloatStorage", "0", 12, 2, [3, 2], [1, 3])
            .Str("long").Tensor("LongStorage", "1", 3, 0, [3], [1])
            .Str("scalar").Tensor("FloatStorage", "0", 12, 11, [], [])
            .Str("param").Global("torch._utils", "_rebuild_parameter").Mark().Tensor("FloatStorage", "0", 12, 1, [2, 2], [4, 2])
                .False().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce()
            .SetItems().Stop().ToArray();
        var zip = CheckpointZip.Create(pickle, new Dictionary<string, byte[]>
        {
            ["0"] = floats.SelectMany(BitConverter.GetBytes).ToArray(),
            ["1"] = longs.SelectMany(BitConverter.GetBytes).ToArray(),
        }, byteOrder: "little");
        using var sd = PyTorchCheckpoint.ReadStateDict(new MemoryStream(zip));
        Assert.Equal(["view", "long", "scalar", "param"], sd.Keys);
        Assert.Equal(new float[] { 2, 5, 3, 6, 4, 7 }, sd["view"].data<float>().ToArray());
        Assert.Equal(longs, sd["long"].data<long>().ToArray());
        Assert.Equal(11f, sd["scalar"].item<float>());
        Assert.Equal(new float[] { 1, 3, 5, 7 }, sd["param"].data<float>().ToArray());
    }

    public static TheoryData<string, byte[], string> BadArchives()
    {
        byte[] Storage(int floats) => new byte[floats * 4];
        var ok = new PickleBuilder().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1]).SetItems().Stop().ToArray();
        byte[] With(PickleBuilder p, int storageFloats = 4) => CheckpointZip.Create(p.ToArray(), new Dictionary<string, byte[]> { ["0"] = Storage(storageFloats) });
        PickleBuilder One(long numel, long offset, long[] size, long[] stride, string type = "FloatStorage", string key = "0") =>
            new PickleBuilder().Proto().EmptyDict().Mark().Str("w").Tensor(type, key, numel, offset, size, stride).SetItems();
        return new()
        {
            { "not a zip", Encoding.ASCII.GetBytes("hello world, not a checkpoint"), "not a zip archive" },
            { "empty file", [], "not a zip archive" },
            { "zip without data.pkl", CheckpointZip.Rewrite(With(One(4, 0, [4], [1]).Stop()), (n, d) => n.EndsWith("data.pkl") ? null : d), "no <archive>/data.pkl" },
            { "big endian", CheckpointZip.Create(ok, new Dictionary<string, byte[]> { ["0"] = Storage(4) }, byteOrder: "big"), "big-endian" },
            { "odd byteorder", CheckpointZip.Create(ok, new Dictionary<string, byte[]> { ["0"] = Storage(4) }, byteOrder: "middle"), "byteorder entry says 'middle'" },
            { "missing storage", CheckpointZip.Create(ok), "storage entry 'archive/data/0' is missing" },
            { "short storage", With(One(4, 0, [4], [1]).Stop(), 3), "has 12 bytes but the pickle describes 4" },
            { "compressed storage", CheckpointZip.Create(ok, new Dictionary<string, byte[]> { ["0"] = Storage(4) }, storageCompression: CompressionLevel.Optimal), "compressed" },
            { "view past the storage", With(One(4, 1, [4], [1]).Stop()), "reaches element 4 of a storage of 4" },
            { "stride past the storage", With(One(4, 0, [2, 2], [3, 1]).Stop()), "reaches element 4" },
            { "expanded view", With(One(4, 0, [100, 4], [0, 1]).Stop()), "expanded views are not supported" },
            { "negative stride", With(One(4, 3, [4], [-1]).Stop()), "negative size or stride" },
            { "negative offset", With(One(4, -1, [1], [1]).Stop()), "negative storage offset" },
            { "size overflow", With(One(4, 0, [1L << 40, 1L << 40], [1, 1]).Stop()), "overflows" },
            { "storage overflow", With(One(1L << 62, 0, [1], [1]).Stop()), "overflows" },
            { "path-like storage key", With(One(4, 0, [4], [1], key: "../0").Stop()), "storage key '../0' is not a plain name" },
            { "not a dict", With(new PickleBuilder().Proto().Int(3).Stop()), "holds the integer 3, not a state_dict" },
            { "non-tensor value", With(new PickleBuilder().Proto().EmptyDict().Mark().Str("epoch").Int(3).SetItems().Stop()), "value for 'epoch' is the integer 3" },
            { "non-string key", With(new PickleBuilder().Proto().EmptyDict().Mark().Int(1).Int(3).SetItems().Stop()), "key that is the integer 1" },
            { "duplicate key", With(new PickleBuilder().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1]).Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1]).SetItems().Stop()), "key 'w' twice" },
            { "unknown opcode", With(new PickleBuilder().Proto().Op((byte)'i')), "opcode 0x69 ('i')" },
            { "no STOP", With(new PickleBuilder().Proto().EmptyDict()), "ends without a STOP" },
            { "truncated opcode", With(new PickleBuilder().Proto().Op((byte)'X').Raw(100, 0, 0, 0, 65)), "ends inside an opcode" },
            { "protocol 1", With(new PickleBuilder().Proto(1).EmptyDict().Stop()), "protocol 1 is not supported" },
            { "stack underflow", With(new PickleBuilder().Proto().Reduce().Stop()), "fewer than the 2 values" },
            { "underflow below mark", With(new PickleBuilder().Proto().EmptyDict().Mark().Str("k").Op((byte)'s').Stop()), "fewer than the 3 values" },
            { "memo miss", With(new PickleBuilder().Proto().Op((byte)'h').Raw(9).Stop()), "memo entry 9 is read before" },
            { "huge LONG1", With(new PickleBuilder().Proto().Op(0x8a).Raw(200).Stop()), "integer of 200 bytes" },
            { "reduce of a storage type", With(new PickleBuilder().Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop()), "'torch.FloatStorage' cannot be called" },
            { "bad persistent id", With(new PickleBuilder().Proto().Str("x").PersId().Stop()), "persistent id the string 'x'" },
            { "build on a string", With(new PickleBuilder().Proto().Str("x").EmptyDict().Op((byte)'b').Stop()), "BUILD on the string 'x'" },
            { "invalid utf8", With(new PickleBuilder().Proto().Op((byte)'X').Raw(2, 0, 0, 0, 0xC3, 0x28).Stop()), "not valid UTF-8" },
            { "two values at STOP", With(new PickleBuilder().Proto().EmptyDict().EmptyDict().Stop()), "STOP with 2 values" },
            { "bool storage with 2", CheckpointZip.Create(One(2, 0, [2], [1], "BoolStorage").Stop().ToArray(), new Dictionary<string, byte[]> { ["0"] = [1, 2] }), "holds bytes other than 0 and 1" },
        };
    }

    [Theory]
    [MemberData(nameof(BadArchives))]
    public void DamagedOrHostileArchivesAreRefusedWithAReason(string what, byte[] checkpoint, string expected)
    {
        var ex = Refused(checkpoint);
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {ex.Message}");
        Assert.Contains("'crafted.pth'", ex.Message);
    }

    [Fact]
    public void DamagedTensorDataIsDetectedByTheZipChecksum()
    {
        var bytes = File.ReadAllBytes(Fixture("views.pth"));
        byte[] storage, pickle;
        using (var zip = new ZipArchive(new MemoryStream(bytes)))
        {
            storage = ReadAll(zip.GetEntry("views/data/0")!);
            pickle = ReadAll(zip.GetEntry("views/data.pkl")!);
        }
        int at = bytes.AsSpan().IndexOf(storage);
        Assert.True(at > 0);
        var damaged = (byte[])bytes.Clone();
        damaged[at + storage.Length / 2] ^= 0x10;
        var ex = Refused(damaged);
        Assert.Contains("'views/data/0' is damaged (CRC-32", ex.Message);

        at = bytes.AsSpan().IndexOf(pickle);
        damaged = (byte[])bytes.Clone();
        damaged[at + pickle.Length - 3] ^= 0x01;
        Assert.Contains("'views/data.pkl' is damaged", Refused(damaged).Message);
    }

    private static byte[] ReadAll(ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Fact]
    public void TheLegacyFormatIsRefusedAsUnsupported()
    {
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.ReadStateDict(Fixture("legacy.pth")));
        Assert.Contains("legacy (PyTorch < 1.6, non-zip) torch.save format, which is not supported", ex.Message);
        Assert.Contains("legacy.pth", ex.Message);
    }

    [Fact]
    public void APthGivenToTheModelFileLoaderGetsAHint()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ModelFile.Load(Fixture("small_c3_f8.pth")));
        Assert.Contains("zip archive (a PyTorch .pth checkpoint? import it with PyTorchCheckpoint)", ex.Message);
        Assert.Contains("small_c3_f8.pth", ex.Message);
    }

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => PyTorchCheckpoint.ReadStateDict(Fixture("nope.pth")));
        Assert.Throws<FileNotFoundException>(() => PyTorchCheckpoint.FromPyTorch(Fixture("nope.pth")));
    }

    [Fact]
    public void AStateDictIsUnusableAfterDispose()
    {
        var sd = PyTorchCheckpoint.ReadStateDict(Fixture("views.pth"));
        sd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => sd["i8"]);
        sd.Dispose();
    }
}
