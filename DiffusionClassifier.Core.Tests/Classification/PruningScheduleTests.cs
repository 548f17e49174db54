using DiffusionClassifier.Classification;

namespace DiffusionClassifier.Tests.Classification;

public class PruningScheduleTests
{
    [Fact]
    public void FromSampleCountsUsesFractionsOfTheLastCount()
    {
        var s = PruningSchedule.FromSampleCounts(new[] { 10, 50 }, new[] { 2, 1 });
        Assert.Equal(new[] { new PruningStage(0.2, 2), new PruningStage(1.0, 1) }, s.Stages);
        Assert.Equal(new[] { (10, 2) }, s.Resolve(50));
        Assert.Equal(new[] { (4, 2) }, s.Resolve(20));
        Assert.Equal(new[] { (20, 2) }, s.Resolve(100));
        Assert.Empty(s.Resolve(1)); // round(0.2) clamps to 1 = n: nothing to prune before the end
    }

    [Fact]
    public void StagesThatRoundToTheSameCountKeepTheSmallerKeep()
    {
        var s = new PruningSchedule(new PruningStage(0.2, 3), new PruningStage(0.25, 2), new PruningStage(0.5, 1));
        Assert.Equal(new[] { (1, 2), (2, 1) }, s.Resolve(4)); // 0.8 -> 1, 1.0 -> 1, 2.0 -> 2
        Assert.Equal(new[] { (4, 3), (5, 2), (10, 1) }, s.Resolve(20));
    }

    [Fact]
    public void InvalidSchedulesThrow()
    {
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(Array.Empty<PruningStage>()));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(1.5, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(double.NaN, 2)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, 0)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, 2), new PruningStage(0.4, 1)));
        Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.2, 2), new PruningStage(0.4, 2)));
        Assert.Throws<ArgumentException>("keep", () => PruningSchedule.FromSampleCounts(new[] { 10, 50 }, new[] { 2 }));
        Assert.Throws<ArgumentException>("cumulativeSamples", () => PruningSchedule.FromSampleCounts(new[] { 50, 10 }, new[] { 2, 1 }));
        Assert.Throws<ArgumentException>("cumulativeSamples", () => PruningSchedule.FromSampleCounts(Array.Empty<int>(), Array.Empty<int>()));
        var e = Assert.Throws<ArgumentException>("stages", () => new PruningSchedule(new PruningStage(0.5, -3)));
        Assert.Contains("-3", e.Message);
    }
}
