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

    [Fact]
    public void MarginsAreParsedResolvedAndPrinted()
    {
        var s = PruningSchedule.Parse("0.1:10:0.3,0.2:10:0.1,0.5:2");
        Assert.Equal(new[]
        {
            new PruningStage(0.1, 10) { Margin = 0.3 },
            new PruningStage(0.2, 10) { Margin = 0.1 },
            new PruningStage(0.5, 2),
        }, s.Stages);
        Assert.NotEqual(new PruningStage(0.1, 10), s.Stages[0]); // the margin takes part in equality
        Assert.Equal(new[] { new PruningBoundary(2, 10, 0.3), new PruningBoundary(4, 10, 0.1), new PruningBoundary(10, 2, null) },
            s.ResolveBoundaries(20));
        Assert.Equal(new[] { (2, 10), (4, 10), (10, 2) }, s.Resolve(20));
        Assert.Equal("0.1n: keep 10 within 0.3, 0.2n: keep 10 within 0.1, 0.5n: keep 2", s.ToString());
        // Stages that round to the same count: the later keep, the smaller margin (as if both ran in turn).
        Assert.Equal(new[] { new PruningBoundary(1, 10, 0.1) }, s.ResolveBoundaries(5).Take(1));
        Assert.Equal(new[] { new PruningBoundary(1, 9, 0.1) }, PruningSchedule.Parse("0.1:10:0.1,0.12:9").ResolveBoundaries(5));
        Assert.Equal(new[] { new PruningBoundary(1, 9, 0.05) }, PruningSchedule.Parse("0.1:10:0.1,0.12:9:0.05").ResolveBoundaries(5));
    }

    [Theory]
    [InlineData("0.2:3,0.5:2")]
    [InlineData(" 0.25 : 2 ")]
    [InlineData("1:1")]
    [InlineData("0.1:10:0.3,0.2:10:0.1,0.5:2")]
    [InlineData("0.1:3:0")]
    public void TheTextFormRoundTrips(string text)
    {
        var schedule = PruningSchedule.Parse(text);
        var again = PruningSchedule.Parse(schedule.ToSpec());
        Assert.Equal(schedule.Stages, again.Stages);
        Assert.Equal(BayesClassifierOptions.DefaultPruning.Stages, PruningSchedule.Parse("0.2:3,0.5:2").Stages);
        var converter = System.ComponentModel.TypeDescriptor.GetConverter(typeof(PruningSchedule));
        Assert.Equal(schedule.Stages, ((PruningSchedule)converter.ConvertFromInvariantString(text)!).Stages);
        Assert.Null(converter.ConvertFromInvariantString(PruningSchedule.None));
        Assert.Equal(schedule.ToSpec(), converter.ConvertToInvariantString(schedule));
    }

    [Theory]
    [InlineData("0.2-3", typeof(FormatException), "'0.2-3' is not 'fraction:keep'")]
    [InlineData("0.2:3,", typeof(FormatException), "'' is not 'fraction:keep'")]
    [InlineData("0.2:x", typeof(FormatException), "'0.2:x'")]
    [InlineData("0.5:2,0.2:1", typeof(ArgumentException), "must exceed the previous stage's 0.5")]
    [InlineData("0.2:0", typeof(ArgumentException), "Keep must be at least 1 but is 0")]
    [InlineData("0.1:10:x", typeof(FormatException), "'0.1:10:x' is not 'fraction:keep' or 'fraction:keep:margin'")]
    [InlineData("0.1:10:0.3:1", typeof(FormatException), "'0.1:10:0.3:1'")]
    [InlineData("0.1:10:-0.5", typeof(ArgumentException), "Margin must be finite and at least 0 but is -0.5")]
    [InlineData("0.1:10:NaN", typeof(ArgumentException), "Margin must be finite and at least 0 but is NaN")]
    [InlineData("0.1:10:Infinity", typeof(ArgumentException), "Margin must be finite and at least 0 but is")]
    [InlineData("0.1:3,0.2:3", typeof(ArgumentException), "Keep 3 must be below the previous stage's 3 (or equal to it with a Margin)")]
    [InlineData("0.1:3:0.2,0.2:4:0.1", typeof(ArgumentException), "Keep 4 must be below the previous stage's 3")]
    public void BadTextSaysWhatIsWrong(string text, Type type, string expected)
    {
        var e = Assert.Throws(type, () => PruningSchedule.Parse(text));
        Assert.Contains(expected, e.Message);
    }
}
