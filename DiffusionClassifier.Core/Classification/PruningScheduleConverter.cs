using System.ComponentModel;
using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Reads a <see cref="PruningSchedule"/> from text (<see cref="PruningSchedule.Parse"/>; <see cref="PruningSchedule.None"/>
/// is null), so that configuration binding can set <see cref="BayesClassifierOptions.Pruning"/> from appsettings.json.
/// </summary>
internal sealed class PruningScheduleConverter : TypeConverter
{
    /// <inheritdoc />
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    /// <inheritdoc />
    public override bool CanConvertTo(ITypeDescriptorContext? context, Type? destinationType) =>
        destinationType == typeof(string) || base.CanConvertTo(context, destinationType);

    /// <inheritdoc />
    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is not string text)
            return base.ConvertFrom(context, culture, value);
        text = text.Trim();
        return text.Equals(PruningSchedule.None, StringComparison.OrdinalIgnoreCase) ? null : PruningSchedule.Parse(text);
    }

    /// <inheritdoc />
    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType)
    {
        if (destinationType == typeof(string))
            return value is PruningSchedule schedule ? schedule.ToSpec() : PruningSchedule.None;
        return base.ConvertTo(context, culture, value, destinationType);
    }
}
