using DiffusionClassifier.Serialization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

public class SafeTensorsTests
{
    [Fact]
    public void RoundTripKeepsValuesDtypesShapesAndMetadata()
    {
        string path = Path.Combine(Path.GetTempPath(), $"st-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var a = randn(3, 4, generator: new Generator(1));
            using var b = arange(5, ScalarType.Int64);
            using var c = randn(2, dtype: ScalarType.Float64, generator: new Generator(2));
            using var e = zeros(0, 3);
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b, ["c"] = c, ["e"] = e },
                new Dictionary<string, string> { ["format"] = "pt", ["x"] = "y" });
            using var content = SafeTensors.Load(path);
            Assert.Equal(4, content.Tensors.Count);
            Assert.True(content.Tensors["a"].eq(a).all().item<bool>());
            Assert.True(content.Tensors["b"].eq(b).all().item<bool>());
            Assert.Equal(ScalarType.Float64, content.Tensors["c"].dtype);
            Assert.True(content.Tensors["c"].eq(c).all().item<bool>());
            Assert.Equal(new long[] { 0, 3 }, content.Tensors["e"].shape);
            Assert.Equal("y", content.Metadata["x"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void HeaderLengthPastTheEndIsRefused()
    {
        var bytes = new byte[16];
        BitConverter.GetBytes(1L << 40).CopyTo(bytes, 0);
        using var ms = new MemoryStream(bytes);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(ms));
        Assert.Contains("header", ex.Message);
    }
}
