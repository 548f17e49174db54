using DiffusionClassifier.Guards;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Guards;

public sealed class TensorGuardTests
{
    [Fact]
    public void ShapeMessageNamesTheParameterTheAlternativesAndTheActualShape()
    {
        using var x = zeros(3, 28, 28);
        var e = Assert.Throws<ArgumentException>(() => TensorGuard.Shape(x, "images", [-1, 1, 28, 28], [-1, 1, -1]));
        Assert.Equal("images", e.ParamName);
        Assert.StartsWith("images: expected shape [B, 1, 28, 28] or [B, 1, *], got [3, 28, 28].", e.Message);
        TensorGuard.Shape(x, "images", [-1, 1, 28, 28], [-1, 28, 28]);
    }

    [Fact]
    public void DTypeIntegerFloatingPointAndDeviceChecks()
    {
        using var f = zeros(2);
        using var i = zeros(2, ScalarType.Int32);
        using var b = zeros(2, ScalarType.Bool);
        Assert.StartsWith("labels: expected dtype Int64, got Float32.", Assert.Throws<ArgumentException>(() => TensorGuard.DType(f, "labels", ScalarType.Int64)).Message);
        Assert.StartsWith("t: expected a floating-point dtype, got Int32.", Assert.Throws<ArgumentException>(() => TensorGuard.FloatingPoint(i, "t")).Message);
        Assert.Throws<ArgumentException>(() => TensorGuard.Integer(b, "labels"));
        Assert.Throws<ArgumentException>(() => TensorGuard.Integer(f, "labels"));
        TensorGuard.Integer(i, "labels");
        TensorGuard.OnDevice(f, new Device("cpu:0"), "images", "the classifier's");
        Assert.True(TensorGuard.SameDevice(new Device("cpu"), new Device("cpu:0")));
        Assert.False(TensorGuard.SameDevice(new Device("cpu"), new Device("cuda:0")));
        Assert.False(TensorGuard.SameDevice(new Device("cuda:0"), new Device("cuda:1")));
    }

    public static TheoryData<float, bool> Pixels => new()
    {
        { 0f, true }, { 1f, true },
        { 1f + 5e-6f, true }, { -5e-6f, true }, // rounding: within the tolerance
        { 1.0001f, false }, { -0.0001f, false }, { float.NaN, false }, { float.PositiveInfinity, false },
    };

    /// <summary>One tolerance policy: the tensor check, the array check and the training data agree on every value.</summary>
    [Theory]
    [MemberData(nameof(Pixels))]
    public void UnitRangeIsOnePolicyEverywhere(float value, bool accepted)
    {
        var pixels = new float[] { 0.5f, value };
        using var images = tensor(pixels).reshape(1, 1, 1, 2);
        using var labels = zeros(1, ScalarType.Int64);
        var checks = new Action[]
        {
            () => TensorGuard.UnitRange(images, "images"),
            () => TensorGuard.UnitRange(pixels, "pixels"),
            () => _ = new TensorTrainingData(images, labels),
        };
        foreach (var check in checks)
        {
            if (accepted)
            {
                check();
            }
            else
            {
                var e = Assert.Throws<ArgumentException>(check);
                Assert.Contains("expected", e.Message);
                Assert.Contains("[0, 1]", e.Message);
            }
        }
    }

    [Fact]
    public void NonFiniteValuesAreCounted()
    {
        using var x = tensor(new[] { float.NaN, float.NaN, float.PositiveInfinity, 0.5f });
        var e = Assert.Throws<ArgumentException>(() => TensorGuard.UnitRange(x, "images"));
        Assert.StartsWith("images: expected finite pixel values in [0, 1], got 2 NaN, 1 +Infinity and 0 -Infinity.", e.Message);
        using var empty = zeros(0);
        TensorGuard.UnitRange(empty, "images");
    }
}
