namespace DiffusionClassifier.Classification;

/// <summary>
/// Reads a <see cref="PruningSchedule"/> from text (<see cref="PruningSchedule.Parse"/>; <see cref="PruningSchedule.None"/>
/// is null), so that configuration binding can set <see cref="BayesClassifierOptions.Pruning"/> from appsettings.json.
/// </summary>
internal sealed class PruningScheduleConverter : NoneOrTextConverter<PruningSchedule>
{
    /// <inheritdoc />
    protected override string NoneText => PruningSchedule.None;

    /// <inheritdoc />
    protected override PruningSchedule Parse(string text) => PruningSchedule.Parse(text);

    /// <inheritdoc />
    protected override string Format(PruningSchedule value) => value.ToSpec();
}
