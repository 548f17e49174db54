using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>Validation and ownership of <see cref="UNetTrunk"/>.</summary>
public class UNetTrunkTests
{
    private static UNetTrunk Make(long b = 3) =>
        new(rand(b, 8, 8, 8), rand(b, 8, 4, 4), rand(b, 16, 2, 2), rand(b, 16, 2, 2));

    [Fact]
    public void Select_PicksRows()
    {
        using var scope = NewDisposeScope();
        using var trunk = Make();
        using var selected = trunk.Select(tensor(new long[] { 2, 2, 0 }));
        Assert.Equal(3, selected.BatchSize);
        Assert.True(selected.H[0].eq(trunk.H[2]).all().item<bool>());
        Assert.True(selected.U1[2].eq(trunk.U1[0]).all().item<bool>());
        using var empty = trunk.Select(zeros(new long[] { 0 }, int64));
        Assert.Equal(0, empty.BatchSize);
    }

    [Fact]
    public void Select_BadIndex_Throws()
    {
        using var scope = NewDisposeScope();
        using var trunk = Make();
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => trunk.Select(tensor(new long[] { 0, 3 })));
        Assert.Equal("index", range.ParamName);
        Assert.Equal(3L, range.ActualValue);
        range = Assert.Throws<ArgumentOutOfRangeException>(() => trunk.Select(tensor(new long[] { -1 })));
        Assert.Equal(-1L, range.ActualValue);
        Assert.Equal("index", Assert.Throws<ArgumentException>(() => trunk.Select(tensor(new int[] { 0, 1 }))).ParamName);
        Assert.Equal("index", Assert.Throws<ArgumentException>(() => trunk.Select(tensor(new long[] { 0, 1 }).reshape(1, 2))).ParamName);
        Assert.Throws<ArgumentNullException>(() => trunk.Select(null!));
    }

    [Fact]
    public void RepeatInterleave_RepeatsEachRowInPlace_AndRejectsZero()
    {
        using var scope = NewDisposeScope();
        using var trunk = Make(2);
        using var repeated = trunk.RepeatInterleave(3);
        Assert.Equal(6, repeated.BatchSize);
        Assert.True(repeated.D1[2].eq(trunk.D1[0]).all().item<bool>());
        Assert.True(repeated.D1[3].eq(trunk.D1[1]).all().item<bool>());
        Assert.Equal(0L, Assert.Throws<ArgumentOutOfRangeException>(() => trunk.RepeatInterleave(0)).ActualValue);
    }

    [Fact]
    public void Constructor_RejectsMismatchedBatches()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => new UNetTrunk(rand(3, 8, 8, 8), rand(2, 8, 4, 4), rand(3, 16, 2, 2), rand(3, 16, 2, 2)));
        Assert.Equal("d1", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => new UNetTrunk(rand(3, 8, 8, 8), rand(3, 8, 4, 4), rand(3, 16, 2), rand(3, 16, 2, 2)));
        Assert.Equal("d2", ex.ParamName);
        Assert.Throws<ArgumentNullException>(() => new UNetTrunk(rand(3, 8, 8, 8), rand(3, 8, 4, 4), rand(3, 16, 2, 2), null!));
    }
}
