<#
.SYNOPSIS
    Converts platyPS-style markdown help pages (docs/commands/<Cmdlet>.md) into one MAML file that Get-Help reads.

.DESCRIPTION
    Generic: every *.md page in -DocsPath that starts with a "# <Verb>-<Noun>" title becomes a command:command entry.
    The page format is platyPS's (see docs/development.md): front matter, # Name, ## SYNOPSIS, ## SYNTAX
    (### <ParameterSet> headings with a fenced block each), ## DESCRIPTION, ## EXAMPLES (### Example N: title, a
    fenced code block, then prose), ## PARAMETERS (### -Name, prose, a fenced yaml block with Type, Parameter Sets,
    Aliases, Required, Position, Default value, Accept pipeline input, Accept wildcard characters), ## INPUTS,
    ## OUTPUTS (### TypeName then prose), ## NOTES, ## RELATED LINKS ([text](uri) items; the front matter's
    'online version:' URL becomes the first, "Online Version:", link).

    Needs nothing but PowerShell (no platyPS), so the build works offline. A page that cannot be converted (no title,
    no synopsis, a parameter without its yaml block) fails the build with the file and line.

.PARAMETER DocsPath
    The folder of markdown pages.

.PARAMETER OutputPath
    The MAML file to write, e.g. out/BitbucketZdu/0.1.0/en-US/BitbucketZdu.dll-Help.xml.

.EXAMPLE
    ./tools/ConvertTo-MamlHelp.ps1 -DocsPath docs/commands -OutputPath out/BitbucketZdu/0.1.0/en-US/BitbucketZdu.dll-Help.xml
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $DocsPath,
    [Parameter(Mandatory)] [string] $OutputPath
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$NsMaml = 'http://schemas.microsoft.com/maml/2004/10'
$NsCommand = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$NsDev = 'http://schemas.microsoft.com/maml/dev/2004/10'

function Split-Sections {
    # Splits lines into sections at headings of the given level ('## ' or '### '), ignoring headings inside fences.
    param([object[]] $Lines, [string] $Prefix)
    $sections = [System.Collections.Generic.List[object]]::new()
    $current = [pscustomobject]@{ Title = ''; Lines = [System.Collections.Generic.List[object]]::new() }
    $inFence = $false
    foreach ($l in $Lines) {
        if ($l.Text -match '^\s*```') { $inFence = -not $inFence }
        if (-not $inFence -and $l.Text.StartsWith($Prefix) -and -not $l.Text.StartsWith($Prefix + '#')) {
            $sections.Add($current)
            $current = [pscustomobject]@{ Title = $l.Text.Substring($Prefix.Length).Trim(); Lines = [System.Collections.Generic.List[object]]::new(); Line = $l.Number }
            continue
        }
        $current.Lines.Add($l)
    }
    $sections.Add($current)
    return $sections
}

function Get-Blocks {
    # Prose paragraphs and fenced code blocks, in order: @{ Kind = 'para'|'code'; Lang; Text }.
    param([object[]] $Lines)
    $blocks = [System.Collections.Generic.List[object]]::new()
    $para = [System.Collections.Generic.List[string]]::new()
    $code = $null; $lang = ''
    $flush = {
        if ($para.Count -gt 0) {
            $blocks.Add([pscustomobject]@{ Kind = 'para'; Lang = ''; Text = ($para -join [Environment]::NewLine) })
            $para.Clear()
        }
    }
    foreach ($l in $Lines) {
        $t = $l.Text
        if ($null -ne $code) {
            if ($t -match '^\s*```\s*$') {
                $blocks.Add([pscustomobject]@{ Kind = 'code'; Lang = $lang; Text = ($code -join [Environment]::NewLine) })
                $code = $null
            }
            else { $code.Add($t) }
            continue
        }
        if ($t -match '^\s*```\s*([\w-]*)') {
            & $flush
            $lang = $Matches[1]; $code = [System.Collections.Generic.List[string]]::new()
            continue
        }
        if ($t.Trim() -eq '') { & $flush; continue }
        $para.Add($t.TrimEnd())
    }
    & $flush
    return $blocks
}

function ConvertTo-PlainText([string] $Markdown) {
    # Inline markdown to plain text: links keep their text, code spans and emphasis lose their marks.
    $t = [regex]::Replace($Markdown, '\[([^\]]+)\]\(([^)]+)\)', '$1 ($2)')
    $t = $t -replace '`([^`]+)`', '$1'
    $t = [regex]::Replace($t, '(\*\*|__)(.+?)\1', '$2')
    return $t
}

function Get-Paragraphs([object[]] $Lines) {
    foreach ($b in @(Get-Blocks $Lines)) {
        if ($b.Kind -eq 'para') {
            # A list keeps one item a line; prose lines join into one paragraph.
            if ($b.Text -match '(?m)^\s*([-*]|\d+\.)\s') { ConvertTo-PlainText $b.Text }
            else { ConvertTo-PlainText (($b.Text -split '\r?\n' | ForEach-Object Trim) -join ' ') }
        }
        else { $b.Text }
    }
}

function Read-Yaml([string] $Text) {
    $map = @{}
    foreach ($line in $Text -split '\r?\n') {
        if ($line -match '^\s*([^:#][^:]*):\s*(.*)$') { $map[$Matches[1].Trim()] = $Matches[2].Trim() }
    }
    return $map
}

function Read-HelpPage([string] $Path) {
    $raw = Get-Content -LiteralPath $Path -Raw -Encoding UTF8
    $n = 0
    $lines = @($raw -split '\r?\n' | ForEach-Object { $n++; [pscustomobject]@{ Text = $_; Number = $n } })
    # Read the front matter (its 'online version' is the page's URL), then drop it.
    $online = ''
    if ($lines.Count -gt 0 -and $lines[0].Text.Trim() -eq '---') {
        $end = 1
        while ($end -lt $lines.Count -and $lines[$end].Text.Trim() -ne '---') {
            if ($lines[$end].Text -match '^online version:\s*(\S*)\s*$') { $online = $Matches[1] }
            $end++
        }
        $lines = @($lines | Select-Object -Skip ($end + 1))
    }
    if ($online -and -not [uri]::IsWellFormedUriString($online, 'Absolute')) { throw "${Path}: 'online version: $online' is not an absolute URL." }
    $titleLine = $lines | Where-Object { $_.Text -match '^# \S' } | Select-Object -First 1
    if (-not $titleLine) { throw "${Path}: no '# <Verb>-<Noun>' title line." }
    $name = $titleLine.Text.Substring(2).Trim()
    if ($name -notmatch '^\w+-\w+$') { throw "${Path}:$($titleLine.Number): '$name' is not a <Verb>-<Noun> command name." }

    $sections = @{}
    foreach ($s in (Split-Sections $lines '## ')) { if ($s.Title) { $sections[$s.Title.ToUpperInvariant()] = $s } }
    function Section([string] $Key) { if ($sections.ContainsKey($Key)) { return @($sections[$Key].Lines) } return @() }

    $synopsis = @(Get-Paragraphs (Section 'SYNOPSIS')) -join ' '
    if (-not $synopsis) { throw "${Path}: '## SYNOPSIS' is missing or empty." }

    $page = [ordered]@{
        Name        = $name
        Synopsis    = $synopsis
        Description = @(Get-Paragraphs (Section 'DESCRIPTION'))
        Syntax      = [System.Collections.Generic.List[object]]::new()
        Parameters  = [System.Collections.Generic.List[object]]::new()
        Examples    = [System.Collections.Generic.List[object]]::new()
        Inputs      = [System.Collections.Generic.List[object]]::new()
        Outputs     = [System.Collections.Generic.List[object]]::new()
        Notes       = @(Get-Paragraphs (Section 'NOTES'))
        Links       = [System.Collections.Generic.List[object]]::new()
    }

    foreach ($s in (Split-Sections (Section 'SYNTAX') '### ')) {
        if (-not $s.Title -and -not ($s.Lines | Where-Object { $_.Text.Trim() })) { continue }
        $setName = ($s.Title -replace '\s*\(Default\)\s*$', '').Trim()
        if (-not $setName) { $setName = '__AllParameterSets' }
        $page.Syntax.Add($setName)
    }

    foreach ($s in (Split-Sections (Section 'EXAMPLES') '### ')) {
        if (-not $s.Title) { continue }
        $blocks = @(Get-Blocks $s.Lines)
        $code = @($blocks | Where-Object Kind -EQ 'code' | ForEach-Object Text) -join ([Environment]::NewLine + [Environment]::NewLine)
        $remarks = @($blocks | Where-Object Kind -EQ 'para' | ForEach-Object { ConvertTo-PlainText ((($_.Text -split '\r?\n') | ForEach-Object Trim) -join ' ') })
        if (-not $code) { throw "${Path}:$($s.Line): example '$($s.Title)' has no fenced code block." }
        $page.Examples.Add([pscustomobject]@{ Title = $s.Title; Code = $code; Remarks = $remarks })
    }

    foreach ($s in (Split-Sections (Section 'PARAMETERS') '### ')) {
        if (-not $s.Title -or $s.Title -notmatch '^-(\w+)') { continue }
        $pname = $Matches[1]
        $blocks = @(Get-Blocks $s.Lines)
        $yaml = @($blocks | Where-Object { $_.Kind -eq 'code' -and $_.Lang -eq 'yaml' })
        if ($yaml.Count -eq 0) { throw "${Path}:$($s.Line): parameter -$pname has no yaml block (Type, Parameter Sets, Required, ...)." }
        $maps = @($yaml | ForEach-Object { Read-Yaml $_.Text })
        $first = $maps[0]
        $sets = foreach ($m in $maps) {
            foreach ($set in (("$($m['Parameter Sets'])" -split ',') | ForEach-Object Trim | Where-Object { $_ })) {
                [pscustomobject]@{ Set = $set; Required = "$($m['Required'])" -eq 'True'; Position = "$($m['Position'])" }
            }
        }
        $desc = @($blocks | Where-Object Kind -EQ 'para' | ForEach-Object { ConvertTo-PlainText ((($_.Text -split '\r?\n') | ForEach-Object Trim) -join ' ') })
        $page.Parameters.Add([pscustomobject]@{
                Name        = $pname
                Description = $desc
                Type        = if ($first['Type']) { $first['Type'] } else { 'Object' }
                Aliases     = if ($first['Aliases']) { $first['Aliases'] } else { 'None' }
                Required    = "$($first['Required'])" -eq 'True'
                Position    = if ($first['Position']) { $first['Position'] } else { 'Named' }
                Default     = if ($first['Default value']) { $first['Default value'] } else { 'None' }
                Pipeline    = if ($first['Accept pipeline input']) { $first['Accept pipeline input'] } else { 'False' }
                Globbing    = "$($first['Accept wildcard characters'])" -eq 'True'
                Sets        = @($sets)
            })
    }

    foreach ($kind in 'INPUTS', 'OUTPUTS') {
        foreach ($s in (Split-Sections (Section $kind) '### ')) {
            if (-not $s.Title) { continue }
            $page[$(if ($kind -eq 'INPUTS') { 'Inputs' } else { 'Outputs' })].Add([pscustomobject]@{ Type = $s.Title; Description = @(Get-Paragraphs $s.Lines) })
        }
    }

    # RELATED LINKS as Get-Help shows them: first "Online Version: <url>" (Get-Help -Online opens the first link that has
    # a uri), then each markdown link. A link to another command's page or to an about_ topic keeps only its text (read it
    # with Get-Help <text>); any other relative link (a walk-through, a recipe) becomes its URL next to the online page.
    if ($online) { $page.Links.Add([pscustomobject]@{ Text = 'Online Version:'; Uri = $online }) }
    foreach ($l in (Section 'RELATED LINKS')) {
        foreach ($m in [regex]::Matches($l.Text, '\[([^\]]+)\]\(([^)]*)\)')) {
            $text = $m.Groups[1].Value; $target = $m.Groups[2].Value.Trim()
            $uri = if ($target -match '^https?://') { $target }
            elseif (-not $target -or $target -match '^[\w]+-[\w]+\.md$' -or $target -match '(^|/)about_\w+\.help\.txt$') { '' }
            elseif ($online) { [uri]::new([uri]$online, $target).AbsoluteUri }
            else { throw "${Path}:$($l.Number): relative link '$target' needs the page's 'online version:' URL to resolve against." }
            $page.Links.Add([pscustomobject]@{ Text = $text; Uri = $uri })
        }
    }
    return [pscustomobject]$page
}

function Write-Paras($w, [string[]] $Paragraphs) {
    $any = $false
    foreach ($p in $Paragraphs) {
        if ($null -eq $p) { continue }
        $w.WriteElementString('para', $NsMaml, $p); $any = $true
    }
    if (-not $any) { $w.WriteElementString('para', $NsMaml, '') }
}

function Write-Parameter($w, $p, [bool] $Required, [string] $Position) {
    $isSwitch = $p.Type -match '^(System\.Management\.Automation\.)?SwitchParameter$'
    $w.WriteStartElement('command', 'parameter', $NsCommand)
    $w.WriteAttributeString('required', $Required.ToString().ToLowerInvariant())
    $w.WriteAttributeString('variableLength', ($p.Type.EndsWith('[]')).ToString().ToLowerInvariant())
    $w.WriteAttributeString('globbing', $p.Globbing.ToString().ToLowerInvariant())
    $w.WriteAttributeString('pipelineInput', $p.Pipeline)
    $w.WriteAttributeString('position', $(if ($Position -match '^\d+$') { $Position } else { 'named' }))
    $w.WriteAttributeString('aliases', $p.Aliases)
    $w.WriteElementString('name', $NsMaml, $p.Name)
    $w.WriteStartElement('maml', 'description', $NsMaml); Write-Paras $w $p.Description; $w.WriteEndElement()
    if (-not $isSwitch) {
        $w.WriteStartElement('command', 'parameterValue', $NsCommand)
        $w.WriteAttributeString('required', 'true'); $w.WriteAttributeString('variableLength', ($p.Type.EndsWith('[]')).ToString().ToLowerInvariant())
        $w.WriteString($p.Type); $w.WriteEndElement()
    }
    $w.WriteStartElement('dev', 'type', $NsDev); $w.WriteElementString('name', $NsMaml, $p.Type); $w.WriteElementString('uri', $NsMaml, ''); $w.WriteEndElement()
    $w.WriteElementString('defaultValue', $NsDev, $p.Default)
    $w.WriteEndElement()
}

function Write-Command($w, $page) {
    $verb, $noun = $page.Name -split '-', 2
    $w.WriteStartElement('command', 'command', $NsCommand)
    $w.WriteAttributeString('xmlns', 'maml', $null, $NsMaml)
    $w.WriteAttributeString('xmlns', 'dev', $null, $NsDev)

    $w.WriteStartElement('command', 'details', $NsCommand)
    $w.WriteElementString('name', $NsCommand, $page.Name)
    $w.WriteElementString('verb', $NsCommand, $verb)
    $w.WriteElementString('noun', $NsCommand, $noun)
    $w.WriteStartElement('maml', 'description', $NsMaml); Write-Paras $w @($page.Synopsis); $w.WriteEndElement()
    $w.WriteEndElement()

    $w.WriteStartElement('maml', 'description', $NsMaml); Write-Paras $w $page.Description; $w.WriteEndElement()

    # One syntax item per parameter set named under ## SYNTAX; a parameter joins the sets its yaml names (or all).
    $w.WriteStartElement('command', 'syntax', $NsCommand)
    $setNames = @($page.Syntax)
    if ($setNames.Count -eq 0) { $setNames = @('__AllParameterSets') }
    foreach ($set in $setNames) {
        $w.WriteStartElement('command', 'syntaxItem', $NsCommand)
        $w.WriteElementString('name', $NsMaml, $page.Name)
        foreach ($p in $page.Parameters) {
            $entry = $p.Sets | Where-Object { $_.Set -eq $set -or $_.Set -eq '(All)' -or $set -eq '__AllParameterSets' } | Select-Object -First 1
            if (-not $entry -and $p.Sets.Count -gt 0) { continue }
            $required = if ($entry) { $entry.Required } else { $p.Required }
            $position = if ($entry -and $entry.Position) { $entry.Position } else { $p.Position }
            Write-Parameter $w $p $required $position
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'parameters', $NsCommand)
    foreach ($p in $page.Parameters) { Write-Parameter $w $p $p.Required $p.Position }
    $w.WriteEndElement()

    foreach ($kind in @(@('inputTypes', 'inputType', $page.Inputs), @('returnValues', 'returnValue', $page.Outputs))) {
        $w.WriteStartElement('command', $kind[0], $NsCommand)
        foreach ($t in $kind[2]) {
            $w.WriteStartElement('command', $kind[1], $NsCommand)
            $w.WriteStartElement('dev', 'type', $NsDev); $w.WriteElementString('name', $NsMaml, $t.Type); $w.WriteEndElement()
            $w.WriteStartElement('maml', 'description', $NsMaml); Write-Paras $w $t.Description; $w.WriteEndElement()
            $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }

    $w.WriteStartElement('maml', 'alertSet', $NsMaml)
    $w.WriteStartElement('maml', 'alert', $NsMaml); Write-Paras $w $page.Notes; $w.WriteEndElement()
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'examples', $NsCommand)
    foreach ($e in $page.Examples) {
        $w.WriteStartElement('command', 'example', $NsCommand)
        $w.WriteElementString('title', $NsMaml, "-------------------------- $($e.Title) --------------------------")
        $w.WriteElementString('code', $NsDev, $e.Code)
        $w.WriteStartElement('dev', 'remarks', $NsDev); Write-Paras $w $e.Remarks; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'relatedLinks', $NsCommand)
    foreach ($l in $page.Links) {
        $w.WriteStartElement('maml', 'navigationLink', $NsMaml)
        $w.WriteElementString('linkText', $NsMaml, $l.Text)
        $w.WriteElementString('uri', $NsMaml, $l.Uri)
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteEndElement()
}

$pages = @(Get-ChildItem -LiteralPath $DocsPath -Filter '*.md' | Where-Object Name -ne 'README.md' | Sort-Object Name | ForEach-Object { Read-HelpPage $_.FullName })
if ($pages.Count -eq 0) { throw "No help pages (*.md) in '$DocsPath'." }

$dir = Split-Path -Parent $OutputPath
if ($dir -and -not (Test-Path $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$writer = [System.Xml.XmlWriter]::Create([System.IO.Path]::GetFullPath($OutputPath), $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($page in $pages) { Write-Command $writer $page }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally {
    $writer.Dispose()
}
Write-Verbose "Wrote help for $($pages.Count) command(s) to $OutputPath"
