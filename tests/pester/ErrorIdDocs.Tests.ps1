# ErrorIds in docs/ and in src/ agree: every id the docs name is thrown somewhere, every id a cmdlet throws is on its
# help page, every id the engine throws is named on at least one page. Text only (no module import), a second or two.
# Run alone: see docs/development.md ("Commands").

BeforeAll {
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

    # Where an ErrorId enters the code: a call and the index of its argument that holds the id (a literal, a ternary
    # of literals, a name bound to one in the same file, or '<cmdlet name> + "Suffix"'). A new way of producing ids
    # needs a row here, or the check cannot see its ids.
    $script:Sinks = @(
        @{ Call = 'new\s+(BbException|UpgradeHaltedException|DiagnosedFailure|ProfileIssue)'; Arg = 0 }
        @{ Call = '(?<![\w.])ThrowError'; Arg = 0 }
        @{ Call = 'new\s+ErrorRecord'; Arg = 1 }
        @{ Call = 'new\s+PreflightFinding'; Arg = 1 }
        @{ Call = '(?<![\w.])[Aa]dd(?=\(\s*(adopting\s*\?\s*)?FindingSeverity)'; Arg = 1 }   # preflight findings
        @{ Call = '(?<![\w.])r\.Add'; Arg = 0 }                                                 # profile issues
        @{ Call = 'LoadBalancerErrors\.(Protocol|PermissionDenied)'; Arg = 1 }
        @{ Call = 'Clock\.PollAsync'; Arg = 6 }                                                  # UpgradeClock.PollAsync
        @{ Call = '(?<![\w.])WaitForFinalizationTasks'; Arg = 2 }
        @{ Call = '(?<![\w.])ThrowIfInvalidProxy'; Arg = 1 }                                  # BbCmdlet
    )
    # LoadBalancerErrors' fixed-id helpers (MemberNotFound, Unreachable, ...) hold their literal in a BbException,
    # found by the row above. ZduApiException's id is "Zdu" + ZduErrorKind: expanded from the enum.
    $script:IdShape = '^[A-Z][A-Za-z0-9]*[a-z0-9][A-Z][A-Za-z0-9]*$'

    function Get-Arguments([string] $text, [int] $open) {
        # Splits the argument list that starts at $open ('(') at top-level commas; skips strings and char literals.
        $args_ = [Collections.Generic.List[string]]::new(); $depth = 0; $start = $open + 1; $i = $open
        while ($i -lt $text.Length) {
            $c = $text[$i]
            if ($c -eq '"') {
                $verbatim = $i -gt 0 -and $text[$i - 1] -eq '@'
                $i++
                while ($i -lt $text.Length) {
                    if (-not $verbatim -and $text[$i] -eq '\') { $i += 2; continue }
                    if ($text[$i] -eq '"') { if ($verbatim -and $i + 1 -lt $text.Length -and $text[$i + 1] -eq '"') { $i += 2; continue }; break }
                    $i++
                }
            } elseif ($c -eq "'") { $i += 2; while ($i -lt $text.Length -and $text[$i] -ne "'") { $i++ } }
            elseif ('([{'.Contains($c)) { $depth++ }
            elseif (')]}'.Contains($c)) { $depth--; if ($depth -eq 0) { $args_.Add($text.Substring($start, $i - $start)); return , $args_ } }
            elseif ($c -eq ',' -and $depth -eq 1) { $args_.Add($text.Substring($start, $i - $start)); $start = $i + 1 }
            $i++
        }
        return , $args_
    }

    function Get-ThrownErrorIds {
        # One row per (id, file, line) where src/BitbucketZdu or src/BitbucketZdu.Core produces an ErrorId.
        $files = Get-ChildItem -Recurse -File -Filter *.cs -LiteralPath (Join-Path $Root 'src/BitbucketZdu'), (Join-Path $Root 'src/BitbucketZdu.Core') |
            Where-Object { $_.FullName -notmatch '[\\/](obj|bin)[\\/]' }
        $suffixes = @()   # '<cmdlet> + "Suffix"' ids of base classes: thrown by every cmdlet deriving from them
        $classes = @{}    # cmdlet class -> base class, file, line
        $rows = foreach ($f in $files) {
            $rel = [IO.Path]::GetRelativePath($Root, $f.FullName).Replace('\', '/')
            # Comments out, line count kept (a '//' inside a string such as https:// survives: only whole-line comments go).
            $text = ((Get-Content -LiteralPath $f.FullName) | ForEach-Object { if ($_ -match '^\s*(//|\*|/\*)') { '' } else { $_ } }) -join "`n"
            $lineOf = { param($pos) ($text.Substring(0, $pos) -split "`n").Count }
            foreach ($m in [regex]::Matches($text, 'class\s+(\w+Command)\s*:\s*(\w+)')) {
                $classes[$m.Groups[1].Value] = @{ Base = $m.Groups[2].Value; File = $rel; Line = & $lineOf $m.Index }
            }
            foreach ($m in [regex]::Matches($text, 'base\("Zdu"\s*\+\s*kind')) {
                $enum = [regex]::Match($text, 'enum\s+ZduErrorKind\s*\{([^}]*)\}')
                foreach ($member in [regex]::Matches($enum.Groups[1].Value, '\b([A-Z]\w*)\b')) {
                    [pscustomobject]@{ Id = 'Zdu' + $member.Value; File = $rel; Line = & $lineOf ($enum.Index + $member.Index) }
                }
            }
            foreach ($sink in $Sinks) {
                foreach ($m in [regex]::Matches($text, $sink.Call + '\s*\(')) {
                    $open = $m.Index + $m.Length - 1
                    $list = Get-Arguments $text $open
                    $arg = ($list | Where-Object { $_ -match '^\s*errorId\s*:' } | Select-Object -First 1)
                    if (-not $arg) { if ($list.Count -le $sink.Arg) { continue }; $arg = $list[$sink.Arg] }
                    $arg = $arg -replace '^\s*errorId\s*:', ''
                    $name = $arg.Trim() -replace '\(.*$', ''
                    if ($arg -notmatch '"' -and $name -match '^\w+$') {
                        # A name: a const, property or one-line method of this file (TimeoutErrorId, VersionErrorId(..)).
                        $bound = [regex]::Match($text, "\b$name\b(\s*\([^)]*\))?\s*(=>|=)\s*([^;]+);")
                        if ($bound.Success) { $arg = $bound.Groups[3].Value }
                    }
                    $line = & $lineOf $m.Index
                    $suffix = [regex]::Match($arg, '(Name|Replace\([^)]*\))\s*\+\s*"(\w+)"')
                    if ($suffix.Success) { $suffixes += @{ Base = $f.BaseName; Suffix = $suffix.Groups[2].Value; File = $rel; Line = $line }; continue }
                    foreach ($lit in [regex]::Matches($arg, '"(\w+)"')) {
                        if ($lit.Groups[1].Value -cmatch $IdShape) { [pscustomobject]@{ Id = $lit.Groups[1].Value; File = $rel; Line = $line } }
                    }
                }
            }
        }
        foreach ($s in $suffixes) {
            foreach ($c in $classes.GetEnumerator() | Where-Object { $_.Value.Base -eq $s.Base }) {
                [pscustomobject]@{ Id = ($c.Key -replace 'Command$', '') + $s.Suffix; File = $c.Value.File; Line = $c.Value.Line; Via = "$($s.File):$($s.Line)" }
            }
        }
        $rows
    }

    function Get-DocumentedErrorIds {
        # Ids the docs name: id-shaped words ('*' wildcards too) of a paragraph that says "ErrorIds" (the NOTES lists),
        # and backticked ones anywhere; the caller keeps those of an area that throws ids and drops code names.
        foreach ($f in Get-ChildItem -Recurse -File -Filter *.md -LiteralPath (Join-Path $Root 'docs')) {
            $rel = [IO.Path]::GetRelativePath($Root, $f.FullName).Replace('\', '/')
            $lines = Get-Content -LiteralPath $f.FullName
            $para = @(); $fence = $false
            for ($i = 0; $i -le $lines.Count; $i++) {
                $l = if ($i -lt $lines.Count) { $lines[$i] } else { '' }
                if ($l -match '^\s*```') { $fence = -not $fence }
                if ($fence -or $l.Trim() -eq '' -or $l -match '^\s*```') {
                    $listed = $para -and ($para.Text -join ' ') -cmatch 'ErrorIds\b'
                    foreach ($p in $para) {
                        if ($listed) {
                            foreach ($w in [regex]::Matches(($p.Text -replace '\([^)]*\)', ''), '(?<![\w.$/-])([A-Z][A-Za-z0-9]+\*?)(?![\w./(-])')) {
                                $id = $w.Groups[1].Value
                                if ($id -cmatch $IdShape -or $id.EndsWith('*')) { [pscustomobject]@{ Id = $id; File = $rel; Line = $p.Line } }
                            }
                        }
                        foreach ($w in [regex]::Matches($p.Text, '`([A-Z][A-Za-z0-9]+\*?)`')) {
                            $id = $w.Groups[1].Value
                            if ($id -cmatch $IdShape -or $id.EndsWith('*')) { [pscustomobject]@{ Id = $id; File = $rel; Line = $p.Line } }
                        }
                    }
                    $para = @(); continue
                }
                $para += @{ Text = $l; Line = $i + 1 }
            }
        }
    }

    $script:Thrown = @(Get-ThrownErrorIds)
    $script:ThrownIds = @($Thrown.Id | Sort-Object -Unique)
    # Whole words of every page, for "is this id named anywhere / on this page".
    $script:PageWords = @{}
    foreach ($f in Get-ChildItem -Recurse -File -Filter *.md -LiteralPath (Join-Path $Root 'docs')) {
        $rel = [IO.Path]::GetRelativePath($Root, $f.FullName).Replace('\', '/')
        $set = [Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
        foreach ($w in [regex]::Matches((Get-Content -Raw -LiteralPath $f.FullName), '[A-Za-z0-9]+')) { [void]$set.Add($w.Value) }
        $PageWords[$rel] = $set
    }
    # Names the code uses as identifiers (types, members, enum values: everything outside string literals). An ErrorId
    # lives only in string literals, so a backticked `UpgradeClock` or `InvalidData` on a page is a code name, not an id.
    $script:CodeNames = [Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
    foreach ($f in Get-ChildItem -Recurse -File -Filter *.cs -LiteralPath (Join-Path $Root 'src'), (Join-Path $Root 'tests')) {
        $code = (Get-Content -Raw -LiteralPath $f.FullName) -replace '@"(?:""|[^"])*"', '' -replace '"(?:\\.|[^"\\\n])*"', '' -replace '//[^\n]*', ''
        foreach ($w in [regex]::Matches($code, '\b[A-Z]\w+\b')) { [void]$CodeNames.Add($w.Value) }
    }
    foreach ($id in $ThrownIds) { [void]$CodeNames.Remove($id) }
    # Areas ids start with (Zdu, Node, Preflight, ...), taken from the ids themselves, and the cmdlets' own prefixes.
    $areas = @($ThrownIds | ForEach-Object { [regex]::Match($_, '^(HAProxy|NginxPlus|[A-Z][a-z0-9]+)').Value }) | Sort-Object -Unique
    $script:AreaPattern = '^(' + ($areas -join '|') + ')'
    $script:Documented = @(Get-DocumentedErrorIds | Where-Object {
            ($_.Id.EndsWith('*') -and $_.Id.TrimEnd('*') -match "$AreaPattern$") -or
            ($_.Id -match $AreaPattern -and -not $CodeNames.Contains($_.Id))
        })
}

Describe 'ErrorIds in docs and code' {
    It 'finds the ids of every kind of sink (the extractor still sees the code)' {
        # Canaries, one per row of $Sinks and the special cases: if a refactor changes how ids are produced, this
        # fails first and says which way of producing ids the extractor lost.
        foreach ($id in 'NodeChecksumMismatch', 'BbNotConnected', 'BbTimeout', 'PreflightCapacity', 'PreflightDowngrade',
            'ProfileInvalidValue', 'ApacheRequestFailed', 'UpgradeHealthTimeout', 'ResumeBbUpgradeTaskFailed', 'ZduWaitTimeout',
            'ZduUnauthorized', 'EnableBbUpgradeModeInvalidState', 'InvokeBbRollingUpgradeInvalidProxy', 'UpgradeModeCancelled') {
            $ThrownIds | Should -Contain $id -Because "the extractor in $PSCommandPath must see $id (look at `$Sinks)"
        }
    }

    It 'names only ErrorIds that src/ throws' {
        $offenders = foreach ($d in $Documented) {
            $ok = if ($d.Id.EndsWith('*')) { $ThrownIds -like $d.Id } else { $ThrownIds -ccontains $d.Id }
            if (-not $ok) { "  $($d.File):$($d.Line): $($d.Id) is thrown nowhere in src/ (remove it from the page, or throw it)" }
        }
        $offenders = @($offenders | Sort-Object -Unique)
        if ($offenders) { throw "$($offenders.Count) ErrorId(s) named in docs/ but thrown nowhere:`n$($offenders -join "`n")" }
    }

    It 'names every ErrorId a cmdlet throws on its help page' {
        $offenders = foreach ($t in $Thrown | Where-Object File -match '^src/BitbucketZdu/Cmdlets/(\w+)Command\.cs$') {
            $class = [regex]::Match($t.File, '(\w+)Command\.cs$').Groups[1].Value
            $cmd = [regex]::Replace($class, '^([A-Z][a-z]+)', '$1-')
            $page = "docs/commands/$cmd.md"
            if (-not $PageWords.ContainsKey($page)) { "  $($t.File):$($t.Line): $($t.Id): ${page} is missing"; continue }
            if (-not $PageWords[$page].Contains($t.Id)) {
                $via = if ($t.Via) { " (inherited from $($t.Via))" } else { '' }
                "  $($t.File):$($t.Line): $($t.Id)$via is not on ${page}: add it to the 'ErrorIds:' list under ## NOTES"
            }
        }
        $offenders = @($offenders | Sort-Object -Unique)
        if ($offenders) { throw "$($offenders.Count) ErrorId(s) thrown by a cmdlet but not on its help page:`n$($offenders -join "`n")" }
    }

    It 'names every ErrorId the engine throws on at least one page of docs/' {
        $offenders = foreach ($g in $Thrown | Where-Object File -notmatch '^src/BitbucketZdu/Cmdlets/' | Group-Object Id) {
            $named = $PageWords.Values | Where-Object { $_.Contains($g.Name) } | Select-Object -First 1
            if (-not $named) {
                $t = $g.Group[0]
                "  $($t.File):$($t.Line): $($g.Name) is named nowhere in docs/: add it to the 'ErrorIds:' list of the cmdlet page(s) that can throw it (or to docs/upgrade-engine.md if no single cmdlet owns it)"
            }
        }
        $offenders = @($offenders | Sort-Object -Unique)
        if ($offenders) { throw "$($offenders.Count) ErrorId(s) thrown in the engine but named nowhere in docs/:`n$($offenders -join "`n")" }
    }
}
