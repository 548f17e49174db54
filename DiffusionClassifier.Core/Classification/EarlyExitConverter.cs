using System.ComponentModel;
using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Reads an <see cref="EarlyExit"/> from text (<see cref="EarlyExit.Parse"/>; <see cref="EarlyExit.None"/> is null), so
/// that configuration binding can turn the default exit off (<c>"EarlyExit": "none"</c>) or set it in one value.
/// </summary>
internal sealed class EarlyExitConverter : TypeConverter
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
        return text.Equals(EarlyExit.None, StringComparison.OrdinalIgnoreCase) ? null : EarlyExit.Parse(text);
    }

    /// <inheritdoc />
    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType)
    {
        if (destinationType == typeof(string))
            return value is EarlyExit exit ? exit.ToSpec() : EarlyExit.None;
        return base.ConvertTo(context, culture, value, destinationType);
    }
}
